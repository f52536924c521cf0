#!/usr/bin/python3
"""PyTorch training throughput of MwResNet or MwMobileNet for `npm run bench`, on the GPU when torch sees one
(CUDA), else the CPU; any input shape, random images (throughput does not depend on content).
The network and the three update rules follow shared/bench/torch_reference.py (the authors'
code): exit heads BN -> ReLU -> global average pool -> FC; per-exit Nesterov SGD stepped in
series after one forward pass for multi-way. MobileNet v1 as the engine's (models/mobilenet.ts):
stem conv (stride 2 from 96 pixels) -> 13 depthwise-separable blocks (dw3x3-BN-ReLU, pw1x1-BN-ReLU).
An imported backbone (--backbone FILE.onnx) is the file's own graph run node by node in torch
(OnnxTrunk), its weights as parameters and its batch norms in training mode, cut at the exit nodes
the studio chose (--exit-nodes, the last one the final features), with the same heads.
Prints one JSON line, with the process's peak resident memory.
Usage: torch_throughput.py [--arch resnet|mobilenet] [--width 1] --depth 56 --exits 9,18 --shape 32x32x3 --mode multiway --batch 128 --steps 6
       torch_throughput.py --backbone FILE.onnx --exit-nodes NODE,...,FINAL_NODE --mode multiway --batch 16 --steps 3
       torch_throughput.py --backbone FILE.onnx --exit-nodes ... --features-of INPUT.bin OUT.bin (eval mode's features at the exits, for the tests)
"""
import argparse, json, resource, time, torch, torch.nn as nn, torch.nn.functional as F

def exit_head(c, classes):
    """The MW-BP code's exit head: BN -> ReLU -> global average pool -> FC."""
    return nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))

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
        s.heads = nn.ModuleList([exit_head(blocks[e - 1].c2.out_channels, classes) for e in s.exits])
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
        s.heads = nn.ModuleList([exit_head(scale(MOBILENET_V1[e - 1][0]), classes) for e in s.exits])
    forward = MwResNet.forward

def onnx_attributes(node):
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

def torch_pads(pads, fill):
    """ONNX [top, left, bottom, right] as conv/pool padding, or as an explicit F.pad where the sides differ."""
    t, l, b, r = pads or [0, 0, 0, 0]
    if (t, l) == (b, r): return (t, l), None
    return (0, 0), lambda x: F.pad(x, (l, r, t, b), value=fill)

def module_key(name):
    """An ONNX value's name as a parameter or buffer name (those cannot hold dots)."""
    return name.replace('.', '_')

class OnnxTrunk(nn.Module):
    """An ONNX CNN's nodes up to the final exit node, run in file order with torch's kernels: what the
    studio trains of an imported backbone (models/import/backbone.ts), ready for autograd."""
    def __init__(s, path, exit_nodes):
        super().__init__()
        import onnx, onnx.numpy_helper as nh
        graph = onnx.load(path).graph; s.to_array = nh.to_array
        s.values = {i.name: torch.from_numpy(nh.to_array(i).copy()) for i in graph.initializer}
        s.params = nn.ParameterDict()
        names = [n.name or f'{n.op_type}_{i}' for i, n in enumerate(graph.node)]
        missing = [e for e in exit_nodes if e not in names]
        if missing: raise SystemExit(f'exit node {missing[0]} is not in {path}')
        last = max(names.index(e) for e in exit_nodes)
        s.nodes = [(names[i], graph.node[i], onnx_attributes(graph.node[i])) for i in range(last + 1)]
        s.exit_outputs = [graph.node[names.index(e)].output[0] for e in exit_nodes]
        initial = {i.name for i in graph.initializer}
        image = next(i for i in graph.input if i.name not in initial)
        s.input_name = image.name
        s.image_shape = [d.dim_value for d in image.type.tensor_type.shape.dim][1:]  # C, H, W
        s.node_params = []  # per node, the parameters it trains (the multi-way segments)
        for name, node, _ in s.nodes:
            trained = []
            for w in node.input[1:3] if node.op_type in ('Conv', 'BatchNormalization') else []:
                key = module_key(w)
                if w in s.values and key not in s.params:
                    s.params[key] = nn.Parameter(s.values[w].float()); trained.append(s.params[key])
            if node.op_type == 'BatchNormalization':
                for w in node.input[3:5]: s.register_buffer(module_key(w), s.values[w].float().clone())
            s.node_params.append(trained)
    def value(s, v):
        key = module_key(v)
        if key in s.params: return s.params[key]
        if key in s._buffers: return s._buffers[key]
        return s.env[v] if v in s.env else s.values[v]
    def forward(s, x):
        s.env = {s.input_name: x}
        for name, node, a in s.nodes:
            ins = [s.value(v) if v else None for v in node.input]; op = node.op_type
            if op == 'Conv':
                padding, pad = torch_pads(a.get('pads'), 0.0)
                y = F.conv2d(pad(ins[0]) if pad else ins[0], ins[1], ins[2] if len(ins) > 2 else None, tuple(a.get('strides', [1, 1])), padding, tuple(a.get('dilations', [1, 1])), a.get('group', 1))
            elif op == 'BatchNormalization':
                y = F.batch_norm(ins[0], ins[3], ins[4], ins[1], ins[2], s.training, 1 - a.get('momentum', 0.9), a.get('epsilon', 1e-5))
            elif op in ('MaxPool', 'AveragePool'):
                padding, pad = torch_pads(a.get('pads'), float('-inf') if op == 'MaxPool' else 0.0)
                k, st, ceil = tuple(a['kernel_shape']), tuple(a.get('strides', [1, 1])), bool(a.get('ceil_mode', 0))
                x0 = pad(ins[0]) if pad else ins[0]
                y = F.max_pool2d(x0, k, st, padding, tuple(a.get('dilations', [1, 1])), ceil) if op == 'MaxPool' else F.avg_pool2d(x0, k, st, padding, ceil, bool(a.get('count_include_pad', 0)))
            elif op == 'GlobalAveragePool': y = ins[0].mean((2, 3), keepdim=True)
            elif op == 'ReduceMean': y = ins[0].mean(tuple(a.get('axes', [2, 3])), keepdim=bool(a.get('keepdims', 1)))
            elif op == 'Relu': y = F.relu(ins[0])
            elif op == 'Clip':
                lo = ins[1] if len(ins) > 1 and ins[1] is not None else a.get('min'); hi = ins[2] if len(ins) > 2 and ins[2] is not None else a.get('max')
                y = torch.clamp(ins[0], None if lo is None else float(lo), None if hi is None else float(hi))
            elif op == 'Sigmoid': y = torch.sigmoid(ins[0])
            elif op == 'HardSigmoid': y = torch.clamp(a.get('alpha', 0.2) * ins[0] + a.get('beta', 0.5), 0, 1)
            elif op == 'HardSwish': y = F.hardswish(ins[0])
            elif op == 'Add': y = ins[0] + ins[1]
            elif op == 'Mul': y = ins[0] * ins[1]
            elif op == 'Concat': y = torch.cat(ins, a['axis'])
            elif op == 'Pad':
                pads = [int(p) for p in (ins[1].tolist() if len(ins) > 1 else a['pads'])]; rank = len(pads) // 2
                value = float(ins[2]) if len(ins) > 2 and ins[2] is not None else a.get('value', 0.0)
                if a.get('mode', b'constant') != b'constant': raise SystemExit(f'the torch reference pads with constants only (node {name})')
                # torch lists (begin, end) pairs from the last axis; ONNX all begins, then all ends.
                y = F.pad(ins[0], [p for d in reversed(range(rank)) for p in (pads[d], pads[d + rank])], value=value)
            elif op in ('Identity', 'Dropout'): y = ins[0]
            elif op == 'Constant': y = torch.from_numpy(s.to_array(a['value']).copy())
            else: raise SystemExit(f'the torch reference does not run {op} (node {name}) of the backbone')
            s.env[node.output[0]] = y
        outs = [s.env[v] for v in s.exit_outputs]; s.env = {}
        return outs

class MwImported(nn.Module):
    """An imported trunk with the MW-BP heads on its exit nodes (the last one the final features)."""
    def __init__(s, trunk, channels, classes=10):
        super().__init__()
        s.trunk = trunk
        s.heads = nn.ModuleList([exit_head(c, classes) for c in channels])
        s.exits = list(range(1, len(channels) + 1))
    def forward(s, x):
        return [head(f) for head, f in zip(s.heads, s.trunk(x))]

def imported_model(a):
    trunk = OnnxTrunk(a.backbone, a.exit_nodes.split(','))
    with torch.no_grad(): channels = [f.shape[1] for f in trunk.eval()(torch.zeros(2, *trunk.image_shape))]
    # The segments of the multi-way backbone optimizers: each exit's trunk nodes and those before.
    ends = [[n.output[0] for _, n, _ in trunk.nodes].index(v) for v in trunk.exit_outputs]
    segments = [[p for ps in trunk.node_params[: end + 1] for p in ps] for end in ends]
    # Positions in the trunk stand in for the engine's exit layers in lambda (it scales gradients only).
    return MwImported(trunk, channels), segments, [end + 1 for end in ends[:-1]]

def features_of(a):
    """Eval mode's features at every exit node for the raw float32 NCHW images in INPUT.bin, written
    to OUT.bin one after another (each NCHW), so a test can hold them against PyTorch's own modules."""
    import numpy as np
    source, target = a.features_of
    trunk = OnnxTrunk(a.backbone, a.exit_nodes.split(',')).eval()
    x = torch.from_numpy(np.fromfile(source, dtype='<f4').reshape(-1, *trunk.image_shape))
    with torch.no_grad(): features = trunk(x)
    with open(target, 'wb') as f:
        for v in features: f.write(v.contiguous().numpy().astype('<f4').tobytes())

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--arch', default='resnet', choices=['resnet', 'mobilenet']); ap.add_argument('--width', type=float, default=1.0)
    ap.add_argument('--depth', type=int, default=20); ap.add_argument('--exits', default='')
    ap.add_argument('--shape', default='28x28x1'); ap.add_argument('--mode', default='multiway', choices=['final', 'joint', 'multiway'])
    ap.add_argument('--batch', type=int, default=128); ap.add_argument('--steps', type=int, default=6)
    ap.add_argument('--gamma', type=float, default=2.0); ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--backbone'); ap.add_argument('--exit-nodes', default='')
    ap.add_argument('--features-of', nargs=2, metavar=('INPUT.bin', 'OUT.bin'))
    a = ap.parse_args(); torch.set_num_threads(a.threads); torch.manual_seed(0)
    if a.features_of: return features_of(a)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if a.backbone:
        m, segments, lay = imported_model(a)
        c, h, w = m.trunk.image_shape
    else:
        h, w, c = (int(v) for v in a.shape.split('x'))
        exits = [int(e) for e in a.exits.split(',') if e]
        m = MwResNet(a.depth, exits, c, width=max(1, round(16 * a.width))) if a.arch == 'resnet' else MwMobileNet(a.width, exits, c, h)
        segments = [list(m.stem.parameters()) + [p for b in m.blocks[:e] for p in b.parameters()] for e in m.exits]
        lay = [2 * e + 1 for e in m.exits[:-1]]
    m = m.to(device); m.train()
    aux = m.exits[:-1]
    lam = [max(0.01, (l / lay[-1]) ** a.gamma) for l in lay] + [1.0]
    seg = lambda k: segments[k]
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
    print(json.dumps({'mode': a.mode, 'arch': 'backbone' if a.backbone else a.arch, 'depth': a.depth, 'shape': f'{h}x{w}x{c}', 'device': name, 'train_img_per_s': round(a.steps * a.batch / dt, 1), 'peak_rss_bytes': peak}))

if __name__ == '__main__': main()
