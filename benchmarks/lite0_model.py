"""Export an EfficientNet-Lite0 snca model (ImageNet backbone, untrained heads) for benchmarks.

The architecture and cost of a real ``snca export`` of the default backbone, without training
one first: 224 px tiles, 128-d embedding, 30 classes. Needs the [train] extra (torch).

    python benchmarks/lite0_model.py lite0.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

from snca_cli.contract.metadata import ModelMetadata
from snca_export.onnx_export import export_graph, set_metadata
from snca_train.network import ModelConfig, SceneEmbeddingNet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="The .onnx file to write.")
    parser.add_argument("--classes", type=int, default=30)
    args = parser.parse_args()
    config = ModelConfig(backbone="efficientnet_lite0", num_classes=args.classes)
    network = SceneEmbeddingNet(config, pretrained=True).eval()
    export_graph(network, args.output)
    metadata = ModelMetadata(
        class_names=[f"class_{i}" for i in range(args.classes)],
        tile_size=config.image_size,
        embedding_dim=config.embedding_dim,
        input_bands=config.input_bands,
        backbone=config.backbone,
        snca_version="benchmark",
    )
    set_metadata(args.output, metadata)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
