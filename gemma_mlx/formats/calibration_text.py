"""Built-in calibration texts (many languages, code and math) for GPTQ quantization."""

from .calibration_text_latin_cyrillic import LATIN_CYRILLIC_TEXTS
from .calibration_text_other_scripts import OTHER_SCRIPT_TEXTS

# This order fixes the calibration rows (and so every measured number): keep it.
CALIBRATION_TEXTS: dict[str, str] = {**LATIN_CYRILLIC_TEXTS, **OTHER_SCRIPT_TEXTS}
