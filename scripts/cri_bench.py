#!/usr/bin/env python3
"""cri_bench.py CONTAINERD_DIR IMAGE EXPECT CMD... : one CRI image pull and first container start, timed,
as kubelet drives them (used by bench-cri.sh). Outside the timing: RunPodSandbox (host network; it does not
depend on the image). Timed, in seconds of wall clock, printed as `pull=S start=S`:
  pull   PullImage(IMAGE): containerd fetches the blobs and unpacks them through its snapshotter
  start  CreateContainer + StartContainer: the container's snapshot prepared, mounted, runc started
Then the container's output must match the regex EXPECT (it proves the image is really there), and the pod
is stopped and removed. With BIND=/path, the host's file is bound read-only at the same path in the
container (images without binaries run the host's static busybox). Run it with the venv python of
../shared/recipes/cri-pod/cri-client-setup.sh and PYTHONPATH=that dir (for api_pb2*). Exits 1 on a CRI
error or an unexpected output."""
import os, re, sys, time
import grpc
import api_pb2 as pb
import api_pb2_grpc as rpc

d, image, expect, cmd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
channel = grpc.insecure_channel("unix://" + d + "/containerd.sock")
images = rpc.ImageServiceStub(channel)
runtime = rpc.RuntimeServiceStub(channel)
# A host-network pod: no CNI needed (the recipe's containerd has none), no hostname set.
sandbox = pb.PodSandboxConfig(
    metadata=pb.PodSandboxMetadata(name="bench", uid="bench-uid", namespace="default", attempt=0),
    log_directory=d + "/log/bench",
    linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
        namespace_options=pb.NamespaceOption(network=pb.NODE))))
bind = os.environ.get("BIND")
mounts = [pb.Mount(container_path=bind, host_path=bind, readonly=True)] if bind else []


def content(log_path):
    """The container's output from its CRI log (lines of `TIME STREAM TAG TEXT`)."""
    out = []
    for line in open(log_path):
        parts = line.rstrip("\n").split(" ", 3)
        text = parts[3] if len(parts) == 4 else ""
        # tag F ends a line, P is a partial line continued by the next record
        out.append(text + ("\n" if parts[2:3] == ["F"] else ""))
    return "".join(out)


try:
    sid = runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=sandbox)).pod_sandbox_id
    t0 = time.monotonic()
    images.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=image), sandbox_config=sandbox))
    t1 = time.monotonic()
    config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="first"), image=pb.ImageSpec(image=image),
                                command=cmd, log_path="first.log", mounts=mounts,
                                linux=pb.LinuxContainerConfig())
    cid = runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=sid, config=config, sandbox_config=sandbox)).container_id
    runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
    t2 = time.monotonic()
    for _ in range(600):
        status = runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
        if status.state == pb.CONTAINER_EXITED:
            break
        time.sleep(0.05)
    out = content(d + "/log/bench/first.log")
    runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sid))
    runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sid))
except grpc.RpcError as e:
    sys.exit(f"cri_bench: {image}: CRI error {e.code()}: {e.details()}")
if status.state != pb.CONTAINER_EXITED or status.exit_code != 0 or not re.fullmatch(expect, out):
    sys.exit(f"cri_bench: {image}: {cmd} exited {status.exit_code} (state {status.state}), "
             f"output {out!r} does not match {expect!r}")
print(f"pull={t1 - t0:.3f} start={t2 - t1:.3f}")
