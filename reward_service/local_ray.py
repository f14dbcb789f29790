"""The Ray the service starts for itself on one machine, with every one of its ports on loopback.

A plain `ray.init` listens on every interface: GCS, the raylet's node and object managers, each worker's
gRPC server, the dashboard agent and its metrics exporter, the autoscaler's and the dashboard's Prometheus
ports. Ray binds them to 127.0.0.1 only when the node's address is loopback, and it keeps a loopback node
address only where it is told the machine is not part of a cluster (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0,
its default on macOS and Windows). Serve's replicas also open an inter-deployment gRPC server on [::]
whatever the node's address (Ray 2.60 `serve/_private/replica.py`, unused unless gRPC transport is turned
on), which `keep_replica_grpc_on_loopback` moves to 127.0.0.1. Nothing here applies to a cluster the
service joins (RAY_ADDRESS): its ports are the cluster's own (docs/SECURITY.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import ray
from ray._private import ray_constants

from rft.auth import is_loopback

LOOPBACK = "127.0.0.1"
log = logging.getLogger("ray.serve")


def init_loopback_ray(*, num_cpus: int | None, namespace: str) -> None:
    """Start a local Ray whose every port listens on 127.0.0.1 only."""
    with _single_machine_mode():
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            dashboard_host=LOOPBACK,
            log_to_driver=False,
            namespace=namespace,
            _node_ip_address=LOOPBACK,
        )


@contextlib.contextmanager
def _single_machine_mode() -> Iterator[None]:
    name = ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR
    saved_env, saved_flag = os.environ.get(name), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[name] = "0"  # read by every process ray.init starts (they pass it on to their workers)
    ray_constants.ENABLE_RAY_CLUSTER = False  # this process read it when it imported Ray
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved_env


def keep_replica_grpc_on_loopback() -> None:
    """In a replica on a loopback node, bind Serve's inter-deployment gRPC server to 127.0.0.1 rather than
    [::] (Serve has no option for it). Called from the replica's constructor, which runs before Serve starts
    that server; a no-op on any other node."""
    if not is_loopback(ray.util.get_node_ip_address()):
        return
    from ray.serve._private import replica

    add_port = getattr(replica, "add_port_to_grpc_server", None)
    if add_port is None:  # another Serve: tests/reward_service/test_ports.py checks the ports for real
        log.warning("Serve changed: its replica gRPC server may listen beyond loopback")
        return
    if getattr(add_port, "keeps_loopback", False):  # done already in this process
        return

    def on_loopback(server: object, address: str) -> int:
        return add_port(server, address.replace("[::]", LOOPBACK, 1))

    on_loopback.keeps_loopback = True  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = on_loopback
