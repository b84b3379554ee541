"""detect-secrets plugins for what its own plugins do not know (1.5.0 has none for Hugging Face).

Loaded by the baseline (``.secrets.baseline``, made with ``detect-secrets scan --plugin scripts/secret_plugins.py``)
and so by ``scripts/scan_secrets.sh``. GitHub, OpenAI and AWS keys have built-in plugins.
"""

import re

from detect_secrets.plugins.base import RegexBasedDetector


class HuggingFaceTokenDetector(RegexBasedDetector):
    """A Hugging Face user or organisation access token (``hf_...``, ``api_org_...``)."""

    secret_type = "Hugging Face Token"  # pragma: allowlist secret
    denylist = [re.compile(r"(?<![A-Za-z0-9_])(?:hf_|api_org_)[A-Za-z0-9]{30,}")]


class HfTokenLiteralDetector(RegexBasedDetector):
    """``HF_TOKEN = "..."``: a token written into code (the course reads it from Colab Secrets or the
    environment). The quotes may be escaped, as in a notebook's JSON."""

    secret_type = "HF_TOKEN assigned a literal"  # pragma: allowlist secret
    denylist = [re.compile(r"HF_TOKEN\s*=\s*\\?[\"']([^\"'\\\n]+)\\?[\"']")]
