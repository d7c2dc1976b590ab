"""Fill a TIKTOKEN_CACHE_DIR with OpenAI's o200k_base and cl100k_base encodings, offline.

tiktoken downloads an encoding's file from openaipublic.blob.core.windows.net the first time
it is used. Where that host cannot be reached but the npm registry can (as on tether's test
machines), the same files are rebuilt from the ``tiktoken`` npm package, which carries them in
a compact form. tiktoken checks each cached file against its own sha256, and so does this
script: a rebuilt file is byte for byte the published one, or it is not written. Without npm,
tiktoken fetches the files itself.

    python scripts/tiktoken_cache.py DEST     # then: export TIKTOKEN_CACHE_DIR=DEST
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

NPM_PACKAGE = "tiktoken@1.0.22"
BASE_URL = "https://openaipublic.blob.core.windows.net/encodings/"
# The files' sha256, as tiktoken_ext.openai_public expects them.
ENCODINGS = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}


def rebuild(compact: str) -> bytes:
    """The .tiktoken file ("<base64 token> <rank>" per line, by rank) from the npm package's
    form: lines of "<label> <first rank> <base64 token> <base64 token> ...", ranks counting up."""
    ranks: dict[str, int] = {}
    for line in compact.splitlines():
        if not line:
            continue
        _label, first, *tokens = line.split(" ")
        for offset, token in enumerate(tokens):
            ranks[token] = int(first) + offset
    ordered = sorted(ranks.items(), key=lambda item: item[1])
    return "".join(f"{token} {rank}\n" for token, rank in ordered).encode("ascii")


def cache_path(dest: Path, name: str) -> Path:
    """Where tiktoken looks for an encoding: its URL's sha1, in TIKTOKEN_CACHE_DIR."""
    return dest / hashlib.sha1(f"{BASE_URL}{name}.tiktoken".encode()).hexdigest()


def cached(dest: Path) -> bool:
    return all(
        cache_path(dest, name).is_file()
        and hashlib.sha256(cache_path(dest, name).read_bytes()).hexdigest() == expected
        for name, expected in ENCODINGS.items()
    )


def main(dest: Path) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    if cached(dest):
        print(f"{', '.join(ENCODINGS)}: already in {dest}")
        return 0
    if shutil.which("npm") is None:
        # No npm: let tiktoken fetch the files from OpenAI's host into the same folder.
        os.environ["TIKTOKEN_CACHE_DIR"] = str(dest)
        import tiktoken

        for name in ENCODINGS:
            tiktoken.get_encoding(name)
        print(f"{', '.join(ENCODINGS)}: fetched by tiktoken into {dest}")
        return 0
    with tempfile.TemporaryDirectory() as folder:
        packed = subprocess.run(
            ["npm", "pack", NPM_PACKAGE, "--silent"],
            cwd=folder,
            check=True,
            capture_output=True,
            text=True,
        )
        tarball = Path(folder) / packed.stdout.strip().splitlines()[-1]
        with tarfile.open(tarball) as tar:
            for name, expected in ENCODINGS.items():
                member = tar.extractfile(f"package/encoders/{name}.json")
                if member is None:
                    raise SystemExit(f"{NPM_PACKAGE} has no encoders/{name}.json")
                data = rebuild(json.load(member)["bpe_ranks"])
                actual = hashlib.sha256(data).hexdigest()
                if actual != expected:
                    raise SystemExit(f"{name}: rebuilt file has sha256 {actual}, not {expected}")
                cache_path(dest, name).write_bytes(data)
                print(f"{name}: {len(data):,} bytes, sha256 verified -> {dest}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    sys.exit(main(Path(sys.argv[1])))
