"""text-embed: one text embedding per ScanNet200 class name -> data/text/."""

from common import run

PATHS = ("out",)  # set in dvc.yaml


def main(params: dict, tracker, args) -> None:
    from lgseg.config import build_text_encoder
    from lgseg.text import class_embeddings, save_embeddings  # torch: after the params check
    from lgseg.text.embed import embedding_meta

    text = params["text"]
    encoder = build_text_encoder(text)
    emb = class_embeddings(encoder, prompt=text["prompt"])
    save_embeddings(args.out, emb, embedding_meta(encoder, prompt=text["prompt"]))
    print(f"wrote {emb.shape[0]} x {emb.shape[1]} class embeddings ({encoder.name}: {encoder.model}) to {args.out}")


if __name__ == "__main__":
    run(main, paths=PATHS)
