"""PyTorch reference of Gantry's pix2pix step (packages/pix2pix Pix2pixTask, core's unetGenerator/patchDiscriminator).

G and D are the reference implementation's own (networks.py): the U-Net of numDowns levels and the conditional
70×70 PatchGAN on input ⊕ output, to which Gantry's are weight-exact.
Step (as Pix2pixTask): D update on (A, B) and (A, G(A)) with G run without gradient; then a G update with a
fresh G(A) and D frozen: BCE + λ·L1 (λ 100); Adam 2e-4, β1 0.5.
"""

from common import adam, bce_d, bce_g, run, set_requires_grad


def build(torch, row):
    F = torch.nn.functional
    c, B = row["net"], row["batch"]
    assert c["loss"] == "bce"
    from networks import patch_discriminator, unet

    G = unet(c)
    D = patch_discriminator(2 * c["channels"], c["ndf"], c["dLayers"], c["norm"])
    G.train()
    D.train()
    optG, optD = adam(torch, G.parameters()), adam(torch, D.parameters())
    s, ch = c["cropSize"], c["channels"]
    a = torch.rand(B, ch, s, s) * 2 - 1
    b = torch.rand(B, ch, s, s) * 2 - 1
    lam_l1, lam_gan = c["lambdaL1"], c["lambdaGan"]

    def step(i):
        with torch.no_grad():
            fake = G(a)
        real_score = D(torch.cat([a, b], 1))
        d = bce_d(F, real_score, D(torch.cat([a, fake], 1)))
        d_real = torch.sigmoid(real_score).mean()
        optD.zero_grad(set_to_none=True)
        d.backward()
        optD.step()

        set_requires_grad([D], False)
        fake = G(a)
        l1 = (fake - b).abs().mean()
        gan = bce_g(F, D(torch.cat([a, fake], 1)))
        g = lam_gan * gan + lam_l1 * l1
        optG.zero_grad(set_to_none=True)
        g.backward()
        optG.step()
        set_requires_grad([D], True)
        return [d.item(), d_real.item(), g.item(), gan.item(), l1.item()]

    return step, {"G": G, "D": D}, {"G": (a,), "D": (torch.cat([a, b], 1),)}


if __name__ == "__main__":
    run(build)
