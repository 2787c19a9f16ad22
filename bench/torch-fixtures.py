#!/usr/bin/python3
"""Reference-network fixtures for Gantry's PyTorch import (run by hand; `pnpm test` never needs PyTorch).

Builds the generators and the PatchGAN of junyanz/pytorch-CycleGAN-and-pix2pix (models/networks.py) with the
classes of bench/reference/networks.py, which compute what that file computes, module for module, so that
state-dict keys and outputs match the reference.
Weights are random (PyTorch's default conv init, batch-norm affine and running statistics drawn away from 1/0
so that the test sees them), inputs follow a formula the tests recompute, and the outputs are stored for the
eval mode (running statistics) and the train mode (batch statistics, dropout off).

  /usr/bin/python3 bench/torch-fixtures.py [OUT_DIR] [--ngf N] [--full]

Default: small widths into packages/core/src/torch/fixtures (committed). --full: ngf 64 into OUT_DIR (for
bench/torch-import.mjs), both formats, nothing committed.
"""
import argparse
import base64
import json
import math
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
from networks import NLayerDiscriminator, ResnetGenerator, UnetGenerator, get_norm_layer  # noqa: E402


def formula_input(c, h, w, phase=0.0):
    """x[0, k, i, j] = sin(0.37·i + 0.23·j + 1.7·k + phase)·cos(0.11·i·j/(h+w) + k): the tests compute the same."""
    i = torch.arange(h, dtype=torch.float64).view(1, h, 1)
    j = torch.arange(w, dtype=torch.float64).view(1, 1, w)
    k = torch.arange(c, dtype=torch.float64).view(c, 1, 1)
    x = torch.sin(0.37 * i + 0.23 * j + 1.7 * k + phase) * torch.cos(0.11 * i * j / (h + w) + k)
    return x.to(torch.float32).unsqueeze(0)


def randomise(net):
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(123)


def b64(t):
    return base64.b64encode(t.detach().contiguous().numpy().astype('<f4').tobytes()).decode()


def run(net, x, mode, stride):
    if mode == 'eval':
        net.eval()
    else:
        net.train()
        for m in net.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
    with torch.no_grad():
        y = net(x.clone())
    y = y.permute(0, 2, 3, 1)[:, ::stride, ::stride, :].contiguous()  # NHWC, subsampled
    return {'shape': list(y.shape), 'data': b64(y)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out', nargs='?', default=os.path.join(os.path.dirname(__file__), '..', 'packages/core/src/torch/fixtures'))
    ap.add_argument('--full', action='store_true', help='ngf 64 networks at full size (for the bench)')
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(23)
    full = a.full
    cases = []

    def add(name, net, arch, x, stride, legacy=False, modes=('eval', 'train'), phase=0.0):
        randomise(net)
        files = {'zip': f'{name}.pth'}
        torch.save(net.state_dict(), os.path.join(a.out, files['zip']))
        if legacy:
            files['legacy'] = f'{name}.legacy.pth'
            torch.save(net.state_dict(), os.path.join(a.out, files['legacy']), _use_new_zipfile_serialization=False)
        outputs = {m: run(net, x, m, stride) for m in modes}
        cases.append({'name': name, 'files': files, 'arch': arch, 'input': list(x.shape), 'phase': phase, 'stride': stride, 'outputs': outputs})
        return net

    g = 64 if full else 2
    bn, inorm = get_norm_layer('batch'), get_norm_layer('instance')
    x256 = formula_input(3, 256, 256)
    add('unet_256_batch', UnetGenerator(3, 3, 8, g, bn, True), {'netG': 'unet_256', 'ngf': g, 'norm': 'batch'}, x256, 1 if full else 4, legacy=True)
    add('unet_256_instance', UnetGenerator(3, 3, 8, g, inorm, True), {'netG': 'unet_256', 'ngf': g, 'norm': 'instance'}, x256, 1 if full else 4, modes=('eval',))
    rs = 256 if full else 64
    xr = formula_input(3, rs, rs, 0.5)
    add('resnet_9blocks_instance', ResnetGenerator(3, 3, g, inorm, False, 9), {'netG': 'resnet_9blocks', 'ngf': g, 'norm': 'instance'}, xr, 1, legacy=True, modes=('eval',), phase=0.5)
    add('resnet_9blocks_batch', ResnetGenerator(3, 3, g, bn, False, 9), {'netG': 'resnet_9blocks', 'ngf': g, 'norm': 'batch'}, xr, 1, phase=0.5)
    if not full:
        add('unet_128_batch_1ch', UnetGenerator(1, 2, 7, 1, bn, True), {'netG': 'unet_128', 'ngf': 1, 'norm': 'batch'}, formula_input(1, 128, 128), 4)
        add('resnet_6blocks_dropout', ResnetGenerator(3, 3, 1, inorm, True, 6), {'netG': 'resnet_6blocks', 'ngf': 1, 'norm': 'instance', 'dropout': True}, formula_input(3, 20, 28), 1, modes=('eval',))
        # A non-square size that is a multiple of 4 but not of 8: the PatchGAN's padding must match at every layer.
        add('patchgan_batch', NLayerDiscriminator(6, 4, 3, bn), {'net': 'patchgan', 'ndf': 4, 'nLayers': 3, 'norm': 'batch'}, formula_input(6, 60, 44), 1)
        d = NLayerDiscriminator(3, 4, 3, bn)
        add('patchgan_256', d, {'net': 'patchgan', 'ndf': 4, 'nLayers': 3, 'norm': 'batch'}, formula_input(3, 256, 256), 1, modes=('eval',))

        # Bad and quirky files, all from a small resnet_6blocks (instance norm).
        base = ResnetGenerator(3, 3, 1, inorm, False, 6)
        sd = base.state_dict()
        torch.save(sd, os.path.join(a.out, 'ok_resnet6.pth'))
        quirky = {f'module.{k}': v for k, v in sd.items()}
        # Files from PyTorch < 0.4 carry instance-norm running statistics; the reference's load_networks drops them.
        quirky['module.model.2.running_mean'] = torch.zeros(1)
        quirky['module.model.2.running_var'] = torch.ones(1)
        quirky['module.model.2.num_batches_tracked'] = torch.tensor(0)
        torch.save(quirky, os.path.join(a.out, 'quirk_module_prefix.pth'))
        missing = dict(sd)
        del missing['model.4.weight']
        missing['model.99.weight'] = torch.zeros(2)
        torch.save(missing, os.path.join(a.out, 'bad_keys.pth'))
        shape = dict(sd)
        shape['model.4.weight'] = torch.zeros(3, 1, 3, 3)
        torch.save(shape, os.path.join(a.out, 'bad_shape.pth'))
        nan = {k: v.clone() for k, v in sd.items()}
        nan['model.1.weight'].view(-1)[5] = float('nan')
        torch.save(nan, os.path.join(a.out, 'bad_nan.pth'))
        torch.save(base, os.path.join(a.out, 'bad_whole_module.pth'))
        torch.save([1, 2, 3], os.path.join(a.out, 'bad_not_dict.pth'))
        torch.save({'conv.weight': torch.zeros(4, 3, 3, 3)}, os.path.join(a.out, 'bad_unknown_arch.pth'))
        strided = {k: v.clone() for k, v in sd.items()}
        # A transposed (non-contiguous) view: the reader must follow the strides.
        w = strided['model.1.weight']
        strided['model.1.weight'] = w.permute(0, 1, 3, 2).contiguous().permute(0, 1, 3, 2)
        half = {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}
        torch.save(strided, os.path.join(a.out, 'quirk_strided.pth'))
        torch.save(half, os.path.join(a.out, 'quirk_float16.pth'))
        torch.save({k: (v.bfloat16() if v.is_floating_point() else v) for k, v in sd.items()}, os.path.join(a.out, 'quirk_bfloat16.pth'))
        torch.save({k: v.double() for k, v in sd.items()}, os.path.join(a.out, 'quirk_float64.legacy.pth'), _use_new_zipfile_serialization=False)
        cases.append({'name': 'ok_resnet6', 'files': {'zip': 'ok_resnet6.pth'}, 'arch': {'netG': 'resnet_6blocks', 'ngf': 1, 'norm': 'instance'},
                      'values': {'model.1.weight': b64(sd['model.1.weight']), 'model.23.bias': b64(sd['model.23.bias'])}})

    with open(os.path.join(a.out, 'manifest.json'), 'w') as f:
        json.dump({'torch': torch.__version__, 'cases': cases}, f)
    total = sum(os.path.getsize(os.path.join(a.out, n)) for n in os.listdir(a.out))
    print(f'wrote {len(cases)} cases to {a.out} ({total / 1e6:.2f} MB)')


if __name__ == '__main__':
    main()
