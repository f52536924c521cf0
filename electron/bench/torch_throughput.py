#!/usr/bin/python3
"""PyTorch training throughput of MwResNet or MwMobileNet for `npm run bench`, on the GPU when torch sees one
(CUDA), else the CPU; any input shape, random images (throughput does not depend on content).
The network and the three update rules follow shared/bench/torch_reference.py (the authors'
code): exit heads BN -> ReLU -> global average pool -> FC; per-exit Nesterov SGD stepped in
series after one forward pass for multi-way. MobileNet v1 as the engine's (models/mobilenet.ts):
stem conv (stride 2 from 96 pixels) -> 13 depthwise-separable blocks (dw3x3-BN-ReLU, pw1x1-BN-ReLU).
Prints one JSON line, with the process's peak resident memory.
Usage: torch_throughput.py [--arch resnet|mobilenet] [--width 1] --depth 56 --exits 9,18 --shape 32x32x3 --mode multiway --batch 128 --steps 6
"""
import argparse, json, resource, time, torch, torch.nn as nn, torch.nn.functional as F

class Block(nn.Module):
    def __init__(s, cin, cout, stride):
        super().__init__()
        s.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); s.b1 = nn.BatchNorm2d(cout)
        s.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); s.b2 = nn.BatchNorm2d(cout)
        s.sc = None if (stride == 1 and cin == cout) else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    def forward(s, x):
        y = F.relu(s.b1(s.c1(x))); y = s.b2(s.c2(y))
        return F.relu(y + (x if s.sc is None else s.sc(x)))

class MwResNet(nn.Module):
    def __init__(s, depth, exits, cin, classes=10, width=16):
        super().__init__()
        n = (depth - 2) // 6
        s.stem = nn.Sequential(nn.Conv2d(cin, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        blocks, c = [], width
        for st, w in enumerate([width, 2 * width, 4 * width]):
            for b in range(n):
                blocks.append(Block(c, w, 2 if (st > 0 and b == 0) else 1)); c = w
        s.blocks = nn.ModuleList(blocks)
        s.exits = sorted(exits) + [len(blocks)]
        def head(c):
            return nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))
        s.heads = nn.ModuleList([head(blocks[e - 1].c2.out_channels) for e in s.exits])
    def forward(s, x):
        outs, h = [], s.stem(x)
        for i, b in enumerate(s.blocks, 1):
            h = b(h)
            if i in s.exits: outs.append(s.heads[s.exits.index(i)](h))
        return outs

MOBILENET_V1 = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]

def conv_bn_relu(cin, cout, k, stride, groups=1):
    return [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

class MwMobileNet(nn.Module):
    def __init__(s, width, exits, cin, size, classes=10):
        super().__init__()
        scale = lambda c: max(1, round(c * width))
        c = scale(32)
        s.stem = nn.Sequential(*conv_bn_relu(cin, c, 3, 2 if size >= 96 else 1))
        blocks = []
        for out, stride in MOBILENET_V1:
            blocks.append(nn.Sequential(*conv_bn_relu(c, c, 3, stride, groups=c), *conv_bn_relu(c, scale(out), 1, 1))); c = scale(out)
        s.blocks = nn.ModuleList(blocks)
        s.exits = sorted(exits) + [len(blocks)]
        head = lambda c: nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))
        s.heads = nn.ModuleList([head(scale(MOBILENET_V1[e - 1][0])) for e in s.exits])
    forward = MwResNet.forward

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--arch', default='resnet', choices=['resnet', 'mobilenet']); ap.add_argument('--width', type=float, default=1.0)
    ap.add_argument('--depth', type=int, default=20); ap.add_argument('--exits', default='')
    ap.add_argument('--shape', default='28x28x1'); ap.add_argument('--mode', default='multiway', choices=['final', 'joint', 'multiway'])
    ap.add_argument('--batch', type=int, default=128); ap.add_argument('--steps', type=int, default=6)
    ap.add_argument('--gamma', type=float, default=2.0); ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args(); torch.set_num_threads(a.threads); torch.manual_seed(0)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    h, w, c = (int(v) for v in a.shape.split('x'))
    exits = [int(e) for e in a.exits.split(',') if e]
    m = (MwResNet(a.depth, exits, c, width=max(1, round(16 * a.width))) if a.arch == 'resnet' else MwMobileNet(a.width, exits, c, h)).to(device); m.train()
    aux = m.exits[:-1]; lay = [2 * e + 1 for e in aux]
    lam = [max(0.01, (l / lay[-1]) ** a.gamma) for l in lay] + [1.0]
    def seg(k):
        ps = list(m.stem.parameters())
        for b in m.blocks[:m.exits[k]]: ps += list(b.parameters())
        return ps
    head = lambda k: list(m.heads[k].parameters())
    sgd = lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9, weight_decay=1e-4, nesterov=True)
    if a.mode == 'multiway':
        opts = [sgd(seg(k), 0.1 / sum(lam[k:len(aux)])) for k in range(len(aux))] + [sgd(seg(len(aux)), 0.1)]
        hopts = [sgd(head(k), 0.1) for k in range(len(m.exits))]
    else:
        opts = [sgd(m.parameters(), 0.1)]
    x = torch.randn(a.batch, c, h, w, device=device); y = torch.randint(0, 10, (a.batch,), device=device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    for s in range(a.steps + 2):  # two warm-up steps, as the studio's bench
        if s == 2: sync(); t0 = time.time()
        outs = m(x); losses = [F.cross_entropy(o, y) for o in outs]
        if a.mode == 'final':
            opts[0].zero_grad(); losses[-1].backward(); opts[0].step()
        elif a.mode == 'joint':
            opts[0].zero_grad(); sum(l * wt for l, wt in zip(losses, lam)).backward(); opts[0].step()
        else:
            grads = [torch.autograd.grad(l, seg(k) + head(k), retain_graph=k < len(losses) - 1) for k, l in enumerate(losses)]
            for k, g in enumerate(grads):
                n = len(seg(k))
                for p, gp in zip(seg(k), g[:n]): p.grad = gp * lam[k]
                for p, gp in zip(head(k), g[n:]): p.grad = gp
                hopts[k].step(); opts[k].step()
    sync(); dt = time.time() - t0
    name = torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu'
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    print(json.dumps({'mode': a.mode, 'arch': a.arch, 'depth': a.depth, 'shape': a.shape, 'device': name, 'train_img_per_s': round(a.steps * a.batch / dt, 1), 'peak_rss_bytes': peak}))

if __name__ == '__main__': main()
