"""Only what pyproject.toml cannot say: the top-level signatures/ folder ships inside the wheel as
sensor/signatures, so `pip install stagewatch` (not only a checkout) finds the bundled rules; and the
compiled packet core (sensor/_core.pyx, sensor/_flow.pyx), built by Cython. The extension is optional: where it does
not build (no C compiler), the package installs and the Python reference core runs (sensor/native.py).

STAGEWATCH_SANITIZE=1 builds it with clang's AddressSanitizer and UBSan (`make sanitize`); STAGEWATCH_SANITIZE=fuzz
adds libFuzzer's coverage instrumentation (`make fuzz`).
"""

import os

from setuptools import Extension, find_packages, setup

DATA = {
    "sensor.signatures": "signatures",
    "sensor.signatures.host": "signatures/host",
    "sensor.signatures.dlp": "signatures/dlp",
}


def extensions() -> list:
    try:
        from Cython.Build import cythonize
    except ImportError:  # a build without Cython (an sdist built elsewhere): the reference core runs
        return []
    args = ["-O2"]
    link: list[str] = []
    mode = os.environ.get("STAGEWATCH_SANITIZE", "")
    if mode in ("1", "fuzz"):
        # fuzz: also libFuzzer's coverage instrumentation, so atheris steers by the C code's edges too
        checks = "address,undefined,fuzzer-no-link" if mode == "fuzz" else "address,undefined"
        args = ["-O1", "-g", "-fno-omit-frame-pointer", f"-fsanitize={checks}", "-fno-sanitize-recover=all"]
        link = [f"-fsanitize={checks}"]
    core = [
        Extension(
            f"sensor.{name}", [f"sensor/{name}.pyx"], extra_compile_args=args, extra_link_args=link, optional=True
        )
        for name in ("_core", "_flow")
    ]
    return cythonize(core, compiler_directives={"language_level": "3"}, quiet=True)


setup(
    packages=[*find_packages(include=["sensor", "sensor.*"]), *DATA],
    package_dir=DATA,
    package_data={
        "sensor.signatures": ["*.yar", "*.yaml"],
        "sensor.signatures.host": ["*.yml"],
        "sensor.signatures.dlp": ["*.yar"],
    },  # fmt: skip
    ext_modules=extensions(),
)
