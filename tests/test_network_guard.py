"""The suite refuses to reach the network, and the hub client is offline."""

import socket

import pytest


def test_external_connection_is_refused():
    with pytest.raises(OSError, match="only use loopback"), socket.socket() as sock:
        sock.connect(("93.184.216.34", 80))


def test_loopback_connection_is_allowed():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.socket() as client:
            client.connect(server.getsockname())


def test_hub_download_fails_offline(tmp_path):
    from huggingface_hub.errors import OfflineModeIsEnabled
    from transformers import AutoConfig

    with pytest.raises((OSError, OfflineModeIsEnabled)):
        AutoConfig.from_pretrained("Qwen/Qwen2.5-VL-7B-Instruct", cache_dir=tmp_path)
