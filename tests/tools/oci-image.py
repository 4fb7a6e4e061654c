#!/usr/bin/env python3
"""Writes an OCI image layout (a tar, for `ctr images import`) of one layer made
of directory DIR, named NAME, whose default command is CMD:

    oci-image.py DIR NAME CMD... > image.tar
"""
import hashlib, io, json, sys, tarfile

def blob(data):
    return "sha256:" + hashlib.sha256(data).hexdigest(), data

root, name, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    t.add(root, arcname=".")
layer_digest, layer = blob(buf.getvalue())
config = {"architecture": "amd64", "os": "linux",
          "config": {"Cmd": cmd, "Env": ["PATH=/bin:/usr/bin"], "WorkingDir": "/"},
          "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}
config_digest, config_bytes = blob(json.dumps(config).encode())
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": len(config_bytes)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": len(layer)}]}
manifest_digest, manifest_bytes = blob(json.dumps(manifest).encode())
index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
         "size": len(manifest_bytes), "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.split(":")[-1]}}]}
out = tarfile.open(fileobj=sys.stdout.buffer, mode="w|")
def add(path, data):
    info = tarfile.TarInfo(path); info.size = len(data); out.addfile(info, io.BytesIO(data))
add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
add("index.json", json.dumps(index).encode())
for d, b in [(layer_digest, layer), (config_digest, config_bytes), (manifest_digest, manifest_bytes)]:
    add("blobs/sha256/" + d.split(":")[1], b)
out.close()
