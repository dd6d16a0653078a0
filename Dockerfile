# The router image: workers, API and simulator share it; the command picks the role.
FROM python:3.11-slim
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
# the CPU build of torch first; an unpinned torch would pull a multi-GB CUDA build
RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY router ./router
COPY models ./models
COPY scripts/export_onnx.py ./scripts/
# editable, so that the package finds models/ (heads) and .cache/onnx/ (the int8 encoder) beside it
RUN pip install -e . && python scripts/export_onnx.py
USER nobody
ENTRYPOINT ["router"]
