#!/usr/bin/env python3
"""Write an OCI image layout with random, incompressible layers, for benchmarks.

Adapted from the team's research lab (shared/reference/lab/mkoci.py): layers are
streamed to disk (a 1 GiB layer never sits in memory) and gzip-wrapped with
stored (level 0) deflate blocks, so they are real gzip tar layers that no tool
can shrink, made at disk speed. Manifests are indented on purpose (a client that
re-serialises them changes their digests).

usage: make-oci-image.py OUTDIR TAG --layers N --layer-kib K [--seed S]
"""
import argparse, gzip, hashlib, json, os, shutil, tarfile, tempfile

CHUNK = 1 << 20

def put_bytes(root, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(root, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)

def put_layer(root, name, size, seed):
    blobs = os.path.join(root, "blobs", "sha256")
    fd, tmp = tempfile.mkstemp(dir=blobs)
    tar_hash = hashlib.sha256()
    with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=0, mtime=0) as gz:
        def write(data):
            tar_hash.update(data)
            gz.write(data)
        info = tarfile.TarInfo(name); info.size = size; info.mtime = 0; info.mode = 0o644
        write(info.tobuf(format=tarfile.PAX_FORMAT))
        write(seed.encode()[:size])
        left = size - min(len(seed.encode()), size)
        while left:
            n = min(CHUNK, left)
            write(os.urandom(n))
            left -= n
        write(b"\0" * ((512 - size % 512) % 512) + b"\0" * 1024)
    h = hashlib.sha256()
    with open(tmp, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    os.chmod(tmp, 0o644)
    os.rename(tmp, os.path.join(blobs, h.hexdigest()))
    return "sha256:" + h.hexdigest(), os.path.getsize(os.path.join(blobs, h.hexdigest())), "sha256:" + tar_hash.hexdigest()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out"); ap.add_argument("tag")
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--layer-kib", type=int, required=True)
    ap.add_argument("--seed", default="ferry-bench")
    a = ap.parse_args()
    shutil.rmtree(a.out, ignore_errors=True)
    os.makedirs(os.path.join(a.out, "blobs", "sha256"))
    with open(os.path.join(a.out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    layers, diff_ids = [], []
    for i in range(a.layers):
        digest, size, diff_id = put_layer(a.out, f"file-{i}.bin", a.layer_kib * 1024, f"{a.seed}-{i}\n")
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size})
        diff_ids.append(diff_id)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/true"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cdigest, csize = put_bytes(a.out, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": cdigest, "size": csize},
                           "layers": layers}, indent=2).encode()
    mdigest, msize = put_bytes(a.out, manifest)
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": mdigest, "size": msize, "annotations": {"org.opencontainers.image.ref.name": a.tag}}]}
    with open(os.path.join(a.out, "index.json"), "w") as f:
        json.dump(index, f)
    print(mdigest)

main()
