"""Exports torchvision 0.14 models (random weights, eval mode) to ONNX for the importer tests,
with each model's input, logits and the features at the given module outputs (forward hooks)
saved beside it as raw little-endian float32 (.bin) with a JSON index.

usage: torchvision_models.py OUT_DIR SPEC_JSON
SPEC_JSON: [{"name": "resnet18", "opset": 11, "fold": true, "size": 64, "batch": 2}, ...]; an item's
optional "kwargs" go to the model's constructor ({"width_mult": 0.25}: a small network).
"""
import json
import os
import sys

import torch
import torchvision


def named_outputs(model, x):
    """The outputs of the modules that hold others (blocks, stages), by qualified name (4-D tensors only)."""
    outputs = {}
    hooks = []
    for name, module in model.named_modules():
        if not name or len(name.split('.')) > 3 or not list(module.children()):
            continue
        def hook(_module, _inputs, output, name=name):
            if isinstance(output, torch.Tensor) and output.dim() == 4:
                outputs[name] = output.detach()
        hooks.append(module.register_forward_hook(hook))
    with torch.no_grad():
        logits = model(x)
    for h in hooks:
        h.remove()
    return logits, outputs


def save(path, tensor):
    tensor.detach().contiguous().numpy().astype('<f4').tofile(path)


def make_model(item):
    """The torchvision model of `item` with seeded random weights, in eval mode; the same every call."""
    torch.manual_seed(item.get('seed', 0))
    model = getattr(torchvision.models, item['name'])(weights=None, **item.get('kwargs', {})).eval()
    # Random but non-trivial batch-norm statistics, so folding and keeping them both matter.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


def main():
    out_dir, spec = sys.argv[1], json.loads(sys.argv[2])
    index = []
    for item in spec:
        model = make_model(item)
        size, batch = item['size'], item['batch']
        x = torch.randn(batch, 3, size, size)
        options = ''.join(f'-{key}{value}' for key, value in sorted(item.get('kwargs', {}).items()))
        tag = f"{item['name']}{options}-op{item['opset']}-{'folded' if item['fold'] else 'kept'}"
        onnx_path = os.path.join(out_dir, tag + '.onnx')
        training = torch.onnx.TrainingMode.EVAL if item['fold'] else torch.onnx.TrainingMode.PRESERVE
        torch.onnx.export(model, x, onnx_path, opset_version=item['opset'], do_constant_folding=item['fold'],
                          training=training, input_names=['input'], output_names=['logits'],
                          dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}})
        logits, features = named_outputs(model, x)
        save(os.path.join(out_dir, tag + '.input.bin'), x)
        save(os.path.join(out_dir, tag + '.logits.bin'), logits)
        saved = {}
        for name, value in features.items():
            file = f'{tag}.module.{name}.bin'
            save(os.path.join(out_dir, file), value.permute(0, 2, 3, 1))  # NHWC, as the engine's features
            saved[name] = {'file': file, 'shape': list(value.permute(0, 2, 3, 1).shape)}
        index.append({**item, 'tag': tag, 'onnx': onnx_path, 'features': saved,
                      'logitsShape': list(logits.shape)})
    print(json.dumps(index))


if __name__ == '__main__':
    main()
