"""Split downstream classes into "seen" and "unseen" by their names' closeness to pretraining classes.

    avssl concepts --downstream-classes ucf101.txt --pretrain-classes vggsound.txt --out DIR
                   [--threshold 0.47] [--topk 3] [--secondary tfidf_char] [--force-unseen FILE]

The AV-SSRL concept-generalisation rule (spec §3B.7): a class is seen when its all-MiniLM-L6-v2
top-1 similarity to a pretraining class exceeds the threshold (0.47 UCF101, 0.46 HMDB51) and the
top-k lists of MiniLM and a second encoder intersect. The second encoder was Phrase-BERT; offline
we use character n-gram TF-IDF by default (see docs/evaluation.md). Writes seen.txt, unseen.txt,
scores.csv and split.json into DIR. Class files hold one name a line (UCF's classInd.txt works).
Needs the extra `concepts` (pip install 'avssl[concepts]').
"""

from __future__ import annotations

import argparse

from avssl.evaluate.class_name_similarity import list_class_similarities
from avssl.evaluate.concepts import read_class_names, split_concepts, write_concept_split


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--downstream-classes", required=True, help="text file, one downstream class a line")
    parser.add_argument("--pretrain-classes", required=True, help="text file, one pretraining class a line")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--threshold", type=float, default=0.47,
                        help="primary top-1 similarity must exceed it (0.47 UCF101, 0.46 HMDB51)")
    parser.add_argument("--topk", type=int, default=3, help="length of the top-k lists that must intersect")
    choices = list_class_similarities()
    parser.add_argument("--primary", default="minilm", choices=choices, help="primary encoder")
    parser.add_argument("--secondary", default="tfidf_char", choices=choices,
                        help="second encoder for the agreement rule (Phrase-BERT substitute)")
    parser.add_argument("--force-unseen", help="text file of downstream classes to put in 'unseen' regardless")


def run(args: argparse.Namespace) -> int:
    downstream = read_class_names(args.downstream_classes)
    pretrain = read_class_names(args.pretrain_classes)
    forced = read_class_names(args.force_unseen) if args.force_unseen else []
    split = split_concepts(
        downstream, pretrain, threshold=args.threshold, top_k=args.topk,
        primary=args.primary, secondary=args.secondary, force_unseen=forced,
    )
    paths = write_concept_split(split, args.out)
    print(f"{len(split.seen)} seen, {len(split.unseen)} unseen of {len(downstream)} downstream classes "
          f"(threshold {args.threshold}, top-{args.topk}, {args.primary} + {args.secondary})")
    for note in split.notes.values():
        print(f"note: {note}")
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0
