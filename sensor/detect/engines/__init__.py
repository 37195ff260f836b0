"""Rule engines behind one interface: yara-python (libyara) and yara-x."""

from sensor.detect.engines.base import Engine, EngineTimeout, Hit, RuleFiles, RuleMeta, bundled_rules_dir, engines
from sensor.registry import import_submodules

import_submodules(__name__, __path__)

__all__ = ["Engine", "EngineTimeout", "Hit", "RuleFiles", "RuleMeta", "bundled_rules_dir", "engines"]
