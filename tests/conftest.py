"""Shared test settings: offline, headless, one torch thread, a private DALAB_HOME."""

import os

for key, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1"),
                   ("GRADIO_ANALYTICS_ENABLED", "False"), ("ANONYMIZED_TELEMETRY", "False"), ("MPLBACKEND", "Agg")):
    os.environ.setdefault(key, value)
for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DALAB_LLM", "DALAB_MODEL"):
    os.environ.pop(key, None)   # no test may reach a live LLM

# Gradio's uploads and served copies of figures go to a private folder, never to ~/.dalab.
if "GRADIO_TEMP_DIR" not in os.environ:
    import tempfile  # noqa: E402

    os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="dalab-test-gradio-")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _torch_one_thread():
    import torch

    torch.set_num_threads(1)
