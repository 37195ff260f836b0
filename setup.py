"""Only what pyproject.toml cannot say: the top-level signatures/ folder ships inside the wheel as
sensor/signatures, so `pip install stagewatch` (not only a checkout) finds the bundled rules."""

from setuptools import find_packages, setup

DATA = {
    "sensor.signatures": "signatures",
    "sensor.signatures.host": "signatures/host",
    "sensor.signatures.dlp": "signatures/dlp",
}

setup(
    packages=[*find_packages(include=["sensor", "sensor.*"]), *DATA],
    package_dir=DATA,
    package_data={
        "sensor.signatures": ["*.yar", "*.yaml"],
        "sensor.signatures.host": ["*.yml"],
        "sensor.signatures.dlp": ["*.yar"],
    },  # fmt: skip
)
