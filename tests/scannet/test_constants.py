import numpy as np

from lgseg.scannet import constants as C


def test_200_classes_ascending_ids_and_names():
    assert len(C.VALID_CLASS_IDS) == len(C.CLASS_NAMES) == 200
    assert list(C.VALID_CLASS_IDS) == sorted(C.VALID_CLASS_IDS)
    assert C.CLASS_NAMES[:4] == ("wall", "chair", "floor", "table")
    assert C.VALID_CLASS_IDS[-1] == 1191 and C.CLASS_NAMES[-1] == "mattress"


def test_head_common_tail_partition_the_classes():
    sizes = {s: len(C.SPLIT_INDICES[s]) for s in C.SPLITS}
    assert sizes == {"head": 66, "common": 68, "tail": 66}
    allidx = np.concatenate([C.SPLIT_INDICES[s] for s in C.SPLITS])
    assert sorted(allidx.tolist()) == list(range(200))
    assert C.CLASS_SPLIT[C.NAME_TO_INDEX["wall"]] == "head"
    assert C.CLASS_SPLIT[C.NAME_TO_INDEX["mattress"]] == "common"
    assert C.CLASS_SPLIT[C.NAME_TO_INDEX["luggage"]] == "tail"


def test_val_presence_lists():
    assert len(C.VAL_PRESENT_CLASS_IDS) == 189 and len(C.TRAIN_ONLY_CLASS_IDS) == 11
    assert set(C.VAL_PRESENT_CLASS_IDS) | set(C.TRAIN_ONLY_CLASS_IDS) == set(C.VALID_CLASS_IDS)
    assert 121 in C.TRAIN_ONLY_CLASS_IDS  # bicycle


def test_official_scene_lists():
    lists = {s: C.official_scene_list(s) for s in ("train", "val", "test")}
    assert {s: len(v) for s, v in lists.items()} == {"train": 1201, "val": 312, "test": 100}
    assert not set(lists["train"]) & set(lists["val"])
    assert lists["test"][0] == "scene0707_00"


def test_raw_id_mapping_round_trip_and_ignore():
    idx = C.raw_to_index(np.array([1, 3, 1191, 0, 12, -5, 99999]))
    assert idx.tolist() == [0, 2, 199, -1, -1, -1, -1]
    assert C.index_to_raw(np.array([0, 2, 199, -1])).tolist() == [1, 3, 1191, 0]
    ids = np.array(C.VALID_CLASS_IDS)
    assert (C.index_to_raw(C.raw_to_index(ids)) == ids).all()
