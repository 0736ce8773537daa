"""``python -m tradearena.testing.node``: run a test node until SIGTERM/SIGINT.

    python -m tradearena.testing.node --kubeconfig PATH --name NODE --bridge NAME \\
        --cidr 10.77.0.0/24 --image NAME=DIR [--image ...] --state-dir DIR [--label K=V]

Must run as root (network namespaces, mounts, chroot).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import signal
from collections.abc import Sequence
from pathlib import Path

from tradearena.testing.node.agent import Agent, NodeConfig


def _pairs(values: Sequence[str], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise SystemExit(f"--{what} wants NAME=VALUE, got {value!r}")
        out[key] = rest
    return out


def parse(argv: Sequence[str] | None = None) -> NodeConfig:
    parser = argparse.ArgumentParser(
        prog="python -m tradearena.testing.node",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kubeconfig", required=True, type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--bridge", required=True, help="Linux bridge name (≤ 15 chars)")
    parser.add_argument("--cidr", required=True, help="pod network; .1 is the node address")
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="image directory with rootfs/ and config.json",
    )
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument(
        "--label", action="append", default=[], metavar="K=V", help="extra Node label"
    )
    parser.add_argument("--keep-node", action="store_true", help="leave the Node object on stop")
    args = parser.parse_args(argv)
    return NodeConfig(
        kubeconfig=args.kubeconfig,
        name=args.name,
        bridge=args.bridge,
        cidr=args.cidr,
        images={k: Path(v) for k, v in _pairs(args.image, "image").items()},
        state_dir=args.state_dir,
        labels=_pairs(args.label, "label"),
        keep_node=args.keep_node,
    )


async def _main(node_config: NodeConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Agent(node_config).run(stop)


def main(argv: Sequence[str] | None = None) -> None:
    # Each forwarded connection holds two descriptors: allow as many as permitted.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    asyncio.run(_main(parse(argv)))


if __name__ == "__main__":
    main()
