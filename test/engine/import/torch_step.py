"""One training step of torchvision's mobilenet_v2 with exit heads, written in PyTorch from
method.md, for the importer's training test.

usage: torch_step.py DIR REQUEST_JSON
REQUEST_JSON: {"model": {...torchvision_models.py item...}, "onnx": path, "input": file, "labels": [...],
  "exits": [candidate ids of the auxiliary exits], "classes": C, "method": "joint" | "multiway",
  "lr": .., "momentum": .., "weightDecay": .., "gamma": .., "heads": {exit block: fc weight file}}
Writes DIR/after.bin (every parameter and buffer after the step, in the engine's layouts, in the
order of the printed index) and prints {"losses": [...], "tensors": [[engine name, size], ...]}.
"""
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from torchvision_models import make_model  # noqa: E402


def engine_names(onnx_path):
    """torch parameter name -> (engine name, layout) from the ONNX file's nodes (batch norm kept)."""
    model = onnx.load(onnx_path)
    names = {}
    for node in model.graph.node:
        base = 'backbone.' + '.'.join(p for p in node.name.lstrip('/').replace(':', '/').split('/') if p)
        if node.op_type == 'Conv':
            group = next((a.i for a in node.attribute if a.name == 'group'), 1)
            names[node.input[1]] = (base + '.weight', 'depthwise' if group > 1 else 'conv')
            if len(node.input) > 2:
                names[node.input[2]] = (base + '.bias', 'vector')
        elif node.op_type == 'BatchNormalization':
            for i, suffix in enumerate(['gamma', 'beta', 'runningMean', 'runningVar']):
                names[node.input[i + 1]] = (f'{base}.{suffix}', 'vector')
    return names


def engine_layout(t, layout):
    if layout == 'conv':
        return t.permute(2, 3, 1, 0)
    if layout == 'depthwise':
        return t.permute(2, 3, 0, 1)
    if layout == 'dense':
        return t.t()
    return t


class Head(torch.nn.Module):
    """The engine's exit head: BN -> ReLU -> global average pool -> FC (bias 0)."""

    def __init__(self, channels, fc_weight):
        super().__init__()
        self.bn = torch.nn.BatchNorm2d(channels)
        self.fc = torch.nn.Linear(channels, fc_weight.shape[1])
        with torch.no_grad():
            self.fc.weight.copy_(fc_weight.t())
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(F.relu(self.bn(x)).mean((2, 3)))


def main():
    out_dir, req = sys.argv[1], json.loads(sys.argv[2])
    model = make_model(req['model'])
    blocks = list(model.features)  # candidate k is the output of features[k - 1]
    size, batch = req['model']['size'], req['model']['batch']
    x = torch.from_numpy(np.fromfile(os.path.join(out_dir, req['input']), dtype='<f4').reshape(batch, 3, size, size))
    y = torch.tensor(req['labels'])
    exit_blocks = req['exits'] + [len(blocks)]
    heads = []
    for b in exit_blocks:
        channels = req['channels'][str(b)]
        w = torch.from_numpy(np.fromfile(os.path.join(out_dir, req['heads'][str(b)]), dtype='<f4').reshape(channels, req['classes']))
        heads.append(Head(channels, w))
    model.train()
    for h in heads:
        h.train()

    # Loss weights (method.md): lambda_k = max(0.01, (l_k / l_last_aux)^gamma), l = 2 * block + 1; final 1.
    layer = lambda b: 2 * b + 1
    last_aux = layer(req['exits'][-1])
    lam = [max(0.01, (layer(b) / last_aux) ** req['gamma']) for b in req['exits']] + [1.0]

    h = x
    logits = []
    for i, block in enumerate(blocks, start=1):
        h = block(h)
        if i in exit_blocks:
            logits.append(heads[exit_blocks.index(i)](h))
    losses = [F.cross_entropy(o, y) for o in logits]

    def sgd(params, lr):
        return torch.optim.SGD(params, lr=lr, momentum=req['momentum'], weight_decay=req['weightDecay'], nesterov=True)

    def seg(k):  # the backbone below exit k: blocks up to its candidate
        return [p for block in blocks[:exit_blocks[k]] for p in block.parameters()]

    lr = req['lr']
    if req['method'] == 'joint':
        params = [p for block in blocks for p in block.parameters()] + [p for hd in heads for p in hd.parameters()]
        opt = sgd(params, lr)
        opt.zero_grad()
        sum(w * l for w, l in zip(lam, losses)).backward()
        opt.step()
    else:
        # Multi-way (the authors' rule): every exit's gradient from the one forward pass, then in series
        # each exit's backbone optimizer (grads x lambda_k, lr / sum of aux weights at and above k; plain lr
        # for the final exit) and its head optimizer (plain lr, unscaled grads).
        aux = len(req['exits'])
        grads = [torch.autograd.grad(l, seg(k) + list(heads[k].parameters()), retain_graph=True)
                 for k, l in enumerate(losses)]
        for k, g in enumerate(grads):
            backbone_lr = lr / sum(lam[k:aux]) if k < aux else lr
            n = len(seg(k))
            for p, gp in zip(seg(k), g[:n]):
                p.grad = gp * lam[k]
            for p, gp in zip(heads[k].parameters(), g[n:]):
                p.grad = gp
            sgd(list(heads[k].parameters()), lr).step()
            sgd(seg(k), backbone_lr).step()

    names = engine_names(req['onnx'])
    tensors = []
    state = dict(model.named_parameters())
    state.update({n: b for n, b in model.named_buffers() if not n.endswith('num_batches_tracked')})
    for torch_name, value in state.items():
        if torch_name not in names:
            continue
        name, layout = names[torch_name]
        tensors.append((name, engine_layout(value.detach(), layout)))
    for b, hd in zip(exit_blocks, heads):
        tensors += [(f'exits.{b}.bn.gamma', hd.bn.weight), (f'exits.{b}.bn.beta', hd.bn.bias),
                    (f'exits.{b}.bn.runningMean', hd.bn.running_mean), (f'exits.{b}.bn.runningVar', hd.bn.running_var),
                    (f'exits.{b}.fc.weight', hd.fc.weight.t()), (f'exits.{b}.fc.bias', hd.fc.bias)]
    with open(os.path.join(out_dir, 'after.bin'), 'wb') as f:
        for _, t in tensors:
            f.write(t.detach().contiguous().numpy().astype('<f4').tobytes())
    print(json.dumps({'losses': [l.item() for l in losses], 'tensors': [[n, t.numel()] for n, t in tensors]}))


if __name__ == '__main__':
    main()
