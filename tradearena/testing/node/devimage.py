"""A small Debian image directory for node tests: ``DIR/rootfs/`` plus ``DIR/config.json``.

The node runs any image laid out this way (the project image built by
``tradearena.testing.image`` is one). This one is built once with ``mmdebstrap``
(Debian bookworm, essential packages plus python3) and cached under
``~/.cache/tradearena/node-image``; it has a non-root user ``app`` (uid/gid 10001),
the user its config names, as the project image has.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tradearena.testing.kube import cache_root

NAME = "tradearena-node-test:bookworm"
USER = "app"
UID = 10001


@dataclass(frozen=True)
class DevImage:
    name: str
    directory: Path

    @property
    def rootfs(self) -> Path:
        return self.directory / "rootfs"


def ensure_dev_image() -> DevImage:
    """Build (once) and return the cached image directory."""
    directory = cache_root() / "node-image"
    config = directory / "config.json"
    if config.is_file():
        return DevImage(NAME, directory)
    building = directory.with_name("node-image.building")
    shutil.rmtree(building, ignore_errors=True)
    rootfs = building / "rootfs"
    building.mkdir(parents=True)
    subprocess.run(
        [
            "mmdebstrap",
            "--variant=essential",
            "--include=python3,ca-certificates",
            "bookworm",
            str(rootfs),
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    with (rootfs / "etc" / "passwd").open("a") as f:
        f.write(f"{USER}:x:{UID}:{UID}::/home/{USER}:/bin/sh\n")
    with (rootfs / "etc" / "group").open("a") as f:
        f.write(f"{USER}:x:{UID}:\n")
    home = rootfs / "home" / USER
    home.mkdir(parents=True)
    shutil.chown(home, UID, UID)
    (building / "config.json").write_text(
        json.dumps(
            {
                "config": {
                    "User": USER,
                    "Env": [
                        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "IMAGE_GREETING=hello",
                    ],
                    "Entrypoint": ["python3"],
                    "Cmd": ["-c", "print('image default command')"],
                    "WorkingDir": f"/home/{USER}",
                }
            },
            indent=2,
        )
    )
    shutil.rmtree(directory, ignore_errors=True)
    building.rename(directory)
    return DevImage(NAME, directory)


if __name__ == "__main__":
    print(ensure_dev_image().directory)
