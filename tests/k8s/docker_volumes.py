"""The docker node's volumes: each of a pod's volumes made as a host directory that its containers
bind-mount, the way a kubelet lays them out (emptyDir writable by anyone, Secrets / ConfigMaps /
projected / downwardAPI as read-only files, the service-account token from the TokenRequest API)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from k8s.docker_pod import Lookup, PodConfigError, field_value

# (service account, audience or "", expiration seconds) -> a token bound to the pod.
TokenSource = Callable[[str, str, int], str]
DEFAULT_MODE = 0o644


def make_volumes(
    pod: Mapping[str, Any],
    root: Path,
    secrets: Lookup,
    config_maps: Lookup,
    token: TokenSource,
) -> dict[str, tuple[Path, bool]]:
    """{volume name: (host directory, read-only)} for every volume of the pod; raises PodConfigError for
    a missing reference or a volume type the node does not run (hostPath, PVCs...)."""
    fs_group = (pod["spec"].get("securityContext") or {}).get("fsGroup")
    made: dict[str, tuple[Path, bool]] = {}
    for volume in pod["spec"].get("volumes") or []:
        directory = root / volume["name"]
        directory.mkdir(parents=True, exist_ok=True)
        if "emptyDir" in volume:
            # A kubelet makes emptyDir 0777: any user the pod runs as may write there.
            directory.chmod(0o777)
            made[volume["name"]] = (directory, False)
            continue
        files = _volume_files(pod, volume, secrets, config_maps, token)
        kind = next((k for k in ("secret", "configMap", "projected", "downwardAPI") if k in volume), "")
        mode = int((volume.get(kind) or {}).get("defaultMode", DEFAULT_MODE))
        for relative, (content, file_mode) in files.items():
            _write(directory / relative, content, file_mode if file_mode is not None else mode, fs_group)
        made[volume["name"]] = (directory, True)
    return made


def _volume_files(
    pod: Mapping[str, Any],
    volume: Mapping[str, Any],
    secrets: Lookup,
    config_maps: Lookup,
    token: TokenSource,
) -> dict[str, tuple[str, int | None]]:
    if "secret" in volume:
        source = volume["secret"]
        return _keyed("secret", source["secretName"], source, secrets)
    if "configMap" in volume:
        source = volume["configMap"]
        return _keyed("configmap", source["name"], source, config_maps)
    if "downwardAPI" in volume:
        return _downward(pod, volume["downwardAPI"])
    if "projected" in volume:
        files: dict[str, tuple[str, int | None]] = {}
        for source in volume["projected"].get("sources") or []:
            if "serviceAccountToken" in source:
                item = source["serviceAccountToken"]
                account = pod["spec"].get("serviceAccountName") or "default"
                value = token(account, item.get("audience", ""), int(item.get("expirationSeconds", 3607)))
                files[item["path"]] = (value, None)
            elif "secret" in source:
                files.update(_keyed("secret", source["secret"]["name"], source["secret"], secrets))
            elif "configMap" in source:
                files.update(
                    _keyed("configmap", source["configMap"]["name"], source["configMap"], config_maps)
                )
            elif "downwardAPI" in source:
                files.update(_downward(pod, source["downwardAPI"]))
            else:
                raise PodConfigError(
                    f"unsupported projected source in volume {volume['name']}: {sorted(source)}"
                )
        return files
    kinds = sorted(k for k in volume if k != "name")
    raise PodConfigError(f"volume {volume['name']}: type {kinds} is not run by the docker node")


def _keyed(
    kind: str, name: str, source: Mapping[str, Any], lookup: Lookup
) -> dict[str, tuple[str, int | None]]:
    data = lookup(name)
    if data is None:
        if source.get("optional"):
            return {}
        raise PodConfigError(f'{kind} "{name}" not found')
    items = source.get("items")
    if not items:
        return {key: (value, None) for key, value in data.items()}
    files: dict[str, tuple[str, int | None]] = {}
    for item in items:
        if item["key"] not in data:
            if source.get("optional"):
                continue
            raise PodConfigError(f'key "{item["key"]}" in {kind} "{name}" not found')
        files[item["path"]] = (data[item["key"]], item.get("mode"))
    return files


def _downward(pod: Mapping[str, Any], source: Mapping[str, Any]) -> dict[str, tuple[str, int | None]]:
    files: dict[str, tuple[str, int | None]] = {}
    for item in source.get("items") or []:
        if "fieldRef" not in item:
            raise PodConfigError("downwardAPI volumes support fieldRef items only here")
        files[item["path"]] = (field_value(pod, item["fieldRef"]["fieldPath"]), item.get("mode"))
    return files


def _write(path: Path, content: str, mode: int, fs_group: int | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    path.chmod(mode)
    if fs_group is not None and os.geteuid() == 0:
        # Like a kubelet with fsGroup: the pod's group owns the files, so a mode such as 0440 still lets
        # the (non-root) containers read them.
        os.chown(path, -1, int(fs_group))
