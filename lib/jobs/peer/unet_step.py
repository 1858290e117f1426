#!/usr/bin/env python3
"""PyTorch CPU peer of `tdr bench`: the SAME reference U-Net train step as
lib/jobs/bench_unet.ts: 15 convs 3→32→32, pool, 32→64→64, pool, 64→128→128, pool,
128→128→128, nearest-up + concat 256→128→128, up + concat 192→64→64, up + concat 96→32→32,
1×1 32→3; 3×3 same convs with bias and ReLU; max-pool 2; batch 8, 64×64×3; L1 to a random target;
Adam 1e-3. Prints one line of JSON: {"framework", "threads", "unetStepMs", "stepsMs"}.

Usage: python3 unet_step.py [--threads N] [--steps N] [--warmup N]   (Debian: apt-get install python3-torch)
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Ref(nn.Module):
    def __init__(self):
        super().__init__()
        c = lambda i, o, k=3: nn.Conv2d(i, o, k, padding=k // 2)
        self.d1 = nn.ModuleList([c(3, 32), c(32, 32)])
        self.d2 = nn.ModuleList([c(32, 64), c(64, 64)])
        self.d3 = nn.ModuleList([c(64, 128), c(128, 128)])
        self.mid = nn.ModuleList([c(128, 128), c(128, 128)])
        self.u3 = nn.ModuleList([c(256, 128), c(128, 128)])
        self.u2 = nn.ModuleList([c(192, 64), c(64, 64)])
        self.u1 = nn.ModuleList([c(96, 32), c(32, 32)])
        self.out = c(32, 3, 1)

    @staticmethod
    def two(convs, x):
        for conv in convs:
            x = F.relu(conv(x))
        return x

    def forward(self, x):
        s1 = self.two(self.d1, x)
        s2 = self.two(self.d2, F.max_pool2d(s1, 2))
        s3 = self.two(self.d3, F.max_pool2d(s2, 2))
        m = self.two(self.mid, F.max_pool2d(s3, 2))
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")
        x = self.two(self.u3, torch.cat([up(m), s3], 1))
        x = self.two(self.u2, torch.cat([up(x), s2], 1))
        x = self.two(self.u1, torch.cat([up(x), s1], 1))
        return self.out(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = Ref()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(8, 3, 64, 64)
    y = torch.rand(8, 3, 64, 64)
    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = (net(x) - y).abs().mean()
        loss.backward()
        opt.step()
        dt = (time.perf_counter() - t0) * 1000
        if i >= a.warmup:
            times.append(dt)
    print(json.dumps({"framework": f"pytorch {torch.__version__}", "threads": torch.get_num_threads(), "unetStepMs": statistics.median(times), "stepsMs": times}))


if __name__ == "__main__":
    main()
