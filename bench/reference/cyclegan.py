"""PyTorch reference of Gantry's CycleGAN step (packages/cyclegan CycleGanTask, core's resnetGenerator,
patchDiscriminator and ImagePool).

G_A, G_B: ResNet generator (reflection pad 3, c7s1-ngf, two k3 s2 downsamplings, `blocks` residual blocks with
reflection padding, two k3 s2 transposed-conv upsamplings, c7s1-out, tanh); instance norm. D_A, D_B: 70×70
PatchGAN with instance norm. LSGAN, λ_cycle 10, λ_identity 0.5, image pools of 50, one Adam for both G and one
for both D.
Step (as CycleGanTask): D update first, on real images and pooled fakes of the current generators (run without
gradient); then the G update, whose objective is split into an A side and a B side, each back-propagated on
its own (gradients accumulate) before one Adam step, with D frozen.
"""

import random

from common import adam, lsgan_d, lsgan_g, run, set_requires_grad


class ImagePool:
    """Shrivastava et al. 2017, as core's ImagePool: store until full, then swap with probability ½."""

    def __init__(self, torch, size, seed):
        self.torch, self.size, self.images, self.rng = torch, size, [], random.Random(seed)

    def query(self, batch):
        if self.size <= 0:
            return batch
        out = []
        for image in batch:
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif self.rng.random() > 0.5:
                j = self.rng.randrange(self.size)
                out.append(self.images[j])
                self.images[j] = image
            else:
                out.append(image)
        return self.torch.cat(out, 0)


def build(torch, row):
    c, B = row["net"], row["batch"]
    assert c["loss"] == "lsgan"
    from networks import patch_discriminator, resnet_generator

    G_A, G_B = resnet_generator(c), resnet_generator(c)
    D_A = patch_discriminator(c["channels"], c["ndf"], c["dLayers"], c["norm"])
    D_B = patch_discriminator(c["channels"], c["ndf"], c["dLayers"], c["norm"])
    for m in (G_A, G_B, D_A, D_B):
        m.train()
    optG = adam(torch, list(G_A.parameters()) + list(G_B.parameters()))
    optD = adam(torch, list(D_A.parameters()) + list(D_B.parameters()))
    pool_a, pool_b = ImagePool(torch, c["poolSize"], 22), ImagePool(torch, c["poolSize"], 21)
    s, ch = c["cropSize"], c["channels"]
    a = torch.rand(B, ch, s, s) * 2 - 1
    b = torch.rand(B, ch, s, s) * 2 - 1
    lam, idt = c["lambdaCycle"], c["lambdaIdentity"]

    def step(i):
        with torch.no_grad():
            pooled_b = pool_b.query(G_A(a))
            pooled_a = pool_a.query(G_B(b))
        d_a = lsgan_d(D_A(b), D_A(pooled_b))
        d_b = lsgan_d(D_B(a), D_B(pooled_a))
        d = d_a + d_b
        optD.zero_grad(set_to_none=True)
        d.backward()
        optD.step()

        set_requires_grad([D_A, D_B], False)
        optG.zero_grad(set_to_none=True)
        logged = []
        for x, G, Fn, D in ((a, G_A, G_B, D_A), (b, G_B, G_A, D_B)):
            fake = G(x)
            parts = [lsgan_g(D(fake)), lam * (Fn(fake) - x).abs().mean()]
            if idt > 0:
                parts.append(lam * idt * (Fn(x) - x).abs().mean())
            total = sum(parts)
            total.backward()
            logged += [p.item() for p in parts]
        optG.step()
        set_requires_grad([D_A, D_B], True)
        return [d.item(), d_a.item(), d_b.item(), *logged]

    return step, {"G": G_A, "D": D_A}, {"G": (a,), "D": (b,)}


if __name__ == "__main__":
    run(build)
