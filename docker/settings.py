"""Build step of docker/Dockerfile: the files the image derives from the repository's settings.

    python3 docker/settings.py REQUIREMENTS LUIGI_CFG

REQUIREMENTS gets setup.cfg's install_requires alone, so the dependency layer is rebuilt
only when they change. LUIGI_CFG gets luigi.cfg with docker/luigi.cfg over it, one file
that Luigi reads from any working directory (it fails on a section repeated in one file,
so the two cannot simply be concatenated). Standard library only: runs on the bare base.
"""

import configparser
import sys


def _parser() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.optionxform = str  # Luigi's keys are case-sensitive
    return cfg


def main(requirements: str, luigi_cfg: str) -> None:
    setup = _parser()
    setup.read("setup.cfg")
    with open(requirements, "w") as fh:
        fh.write(setup["options"]["install_requires"].strip() + "\n")

    merged = _parser()
    merged.read(["luigi.cfg", "docker/luigi.cfg"])
    with open(luigi_cfg, "w") as fh:
        fh.write("# The repository's luigi.cfg with docker/luigi.cfg over it (docker/settings.py).\n")
        fh.write("# LUIGI_CONFIG_PATH, then the command line, override it.\n\n")
        merged.write(fh)


if __name__ == "__main__":
    main(*sys.argv[1:])
