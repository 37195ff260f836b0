"""Only what pyproject.toml cannot say: the top-level signatures/ folder ships inside the wheel as
sensor/signatures, so `pip install stagewatch` (not only a checkout) finds the bundled rules."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["sensor", "sensor.*"]), "sensor.signatures", "sensor.signatures.host"],
    package_dir={"sensor.signatures": "signatures", "sensor.signatures.host": "signatures/host"},
    package_data={"sensor.signatures": ["*.yar"], "sensor.signatures.host": ["*.yml"]},
)
