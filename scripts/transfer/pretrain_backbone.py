"""Issue 19's transfer measurement, step 1: a backbone pretrained on data the studio's run never sees.

Trains torchvision's resnet18 (5 outputs) on Fashion-MNIST classes 0-4 (all 30,000 training images),
brought to 32x32x3 and normalised with ImageNet's mean and std (what the studio applies to an imported
backbone by default), then exports it, and the same network untrained (the from-scratch baseline), with
torch.onnx.export. Also writes the target task as an image folder: classes 5-9, a pool of training
images per class (the run's --limit-train picks its seeded, stratified share of it) and every test image.

  /usr/bin/python3 scripts/transfer/pretrain_backbone.py --out /tmp/transfer [--epochs 1] [--threads 2]
"""
import argparse
import gzip
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

FASHION = '/usr/share/datasets/fashion-mnist'
NAMES = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot']
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def idx(name, offset):
    with gzip.open(os.path.join(FASHION, name)) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def load(split):
    prefix = 'train' if split == 'train' else 't10k'
    images = idx(f'{prefix}-images-idx3-ubyte.gz', 16).reshape(-1, 28, 28)
    labels = idx(f'{prefix}-labels-idx1-ubyte.gz', 8)
    return images, labels


def to_input(images):
    x = torch.from_numpy(images.copy()).float().div(255).unsqueeze(1)
    x = F.interpolate(x, size=32, mode='bilinear', align_corners=False).repeat(1, 3, 1, 1)
    return (x - MEAN) / STD


def export(model, path):
    model.eval()
    torch.onnx.export(model, torch.zeros(1, 3, 32, 32), path, opset_version=13,
                      input_names=['input'], output_names=['logits'], dynamic_axes={'input': {0: 'batch'}})


def write_folder(root, images, labels, per_class, rng):
    for c in range(5, 10):
        indices = np.flatnonzero(labels == c)
        if per_class is not None:
            indices = rng.choice(indices, per_class, replace=False)
        folder = os.path.join(root, NAMES[c])
        os.makedirs(folder, exist_ok=True)
        for i in indices:
            Image.fromarray(images[i]).save(os.path.join(folder, f'{i}.png'))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', required=True)
    parser.add_argument('--epochs', type=int, default=1)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--pool', type=int, default=300, help='training images per target class in the pool')
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)

    model = torchvision.models.resnet18(num_classes=5)
    export(model, os.path.join(args.out, 'resnet18-untrained.onnx'))

    train_images, train_labels = load('train')
    test_images, test_labels = load('test')
    source = train_labels < 5
    x, y = to_input(train_images[source]), torch.from_numpy(train_labels[source].astype(np.int64))
    source_test = test_labels < 5
    xt, yt = to_input(test_images[source_test]), torch.from_numpy(test_labels[source_test].astype(np.int64))

    steps = args.epochs * ((len(x) + 127) // 128)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=steps)
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x))
        for b in range(0, len(x), 128):
            batch = order[b:b + 128]
            flip = torch.rand(len(batch)) < 0.5
            images = torch.where(flip.view(-1, 1, 1, 1), x[batch].flip(3), x[batch])
            loss = F.cross_entropy(model(images), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        model.eval()
        with torch.no_grad():
            correct = sum((model(xt[i:i + 500]).argmax(1) == yt[i:i + 500]).sum().item() for i in range(0, len(xt), 500))
        print(f'epoch {epoch + 1}: loss {loss.item():.3f}, source test top-1 {100 * correct / len(xt):.2f} % '
              f'({time.time() - start:.0f} s)', flush=True)
    export(model, os.path.join(args.out, 'resnet18-fashion0-4.onnx'))

    rng = np.random.default_rng(0)
    write_folder(os.path.join(args.out, 'fashion5-9', 'train'), train_images, train_labels, args.pool, rng)
    write_folder(os.path.join(args.out, 'fashion5-9', 'test'), test_images, test_labels, None, rng)
    print(f'wrote {args.out}/resnet18-fashion0-4.onnx, resnet18-untrained.onnx and fashion5-9/', flush=True)


if __name__ == '__main__':
    main()
