"""Build step of docker/Dockerfile: the files the image derives from the repository's settings.

    python3 docker/settings.py REQUIREMENTS LUIGI_CFG [EXTRAS]

REQUIREMENTS gets setup.cfg's install_requires and those of the comma-separated EXTRAS
(e.g. s3), alone, so the dependency layer is rebuilt only when they change. LUIGI_CFG gets luigi.cfg with
docker/luigi.cfg over it, one file
that Luigi reads from any working directory (it fails on a section repeated in one file,
so the two cannot simply be concatenated). Standard library only: runs on the bare base.
"""

import configparser
import sys


def _parser() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.optionxform = str  # Luigi's keys are case-sensitive
    return cfg


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip() and not line.strip().startswith("#")]


def main(requirements: str, luigi_cfg: str, extras: str = "") -> None:
    setup = _parser()
    setup.read("setup.cfg")
    wanted = _lines(setup["options"]["install_requires"])
    for extra in filter(None, (e.strip() for e in extras.split(","))):
        # an extra naming the package itself (batchml[s3]) is its own line of the list
        wanted += [
            r for r in _lines(setup["options.extras_require"][extra]) if not r.startswith(setup["metadata"]["name"])
        ]
    with open(requirements, "w") as fh:
        fh.write("\n".join(wanted) + "\n")

    merged = _parser()
    merged.read(["examples/taxi/luigi.cfg", "docker/luigi.cfg"])
    with open(luigi_cfg, "w") as fh:
        fh.write("# The taxi example's luigi.cfg with docker/luigi.cfg over it (docker/settings.py).\n")
        fh.write("# LUIGI_CONFIG_PATH, then the command line, override it.\n\n")
        merged.write(fh)


if __name__ == "__main__":
    main(*sys.argv[1:])
