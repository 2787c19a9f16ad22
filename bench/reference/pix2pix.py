"""PyTorch reference of Gantry's pix2pix step (packages/pix2pix Pix2pixTask, core's unetGenerator/patchDiscriminator).

G: U-Net with numDowns ×2 levels (k4 s2 convs, LeakyReLU 0.2 before each down conv, ReLU before each up
transposed conv, skip connections by concatenation, dropout 0.5 on the decoder's ngf·8 levels, tanh out).
D: conditional 70×70 PatchGAN on input ⊕ output.
Step (as Pix2pixTask): D update on (A, B) and (A, G(A)) with G run without gradient; then a G update with a
fresh G(A) and D frozen: BCE + λ·L1 (λ 100); Adam 2e-4, β1 0.5.
"""

from common import adam, bce_d, bce_g, norm2d, patch_discriminator, run, set_requires_grad


def unet(torch, c):
    nn = torch.nn
    n, ngf, norm = c["numDowns"], c["ngf"], c["norm"]
    ch = c["channels"]
    f = lambda level: ngf * min(2**level, 8)  # noqa: E731
    bias = norm != "batch"

    class Unet(nn.Module):
        def __init__(self):
            super().__init__()
            downs = [nn.Conv2d(ch, f(0), 4, 2, 1, bias=True)]
            for level in range(1, n):
                innermost = level == n - 1
                layers = [nn.LeakyReLU(0.2), nn.Conv2d(f(level - 1), f(level), 4, 2, 1, bias=True if innermost else bias)]
                if not innermost:
                    layers.append(norm2d(torch, norm, f(level)))
                downs.append(nn.Sequential(*layers))
            self.downs = nn.ModuleList(downs)
            ups = []
            up_ch = f(n - 1)
            for level in range(n - 1, 0, -1):
                layers = [nn.ReLU(), nn.ConvTranspose2d(up_ch, f(level - 1), 4, 2, 1, bias=bias), norm2d(torch, norm, f(level - 1))]
                if c["dropout"] and 4 <= level <= n - 2:
                    layers.append(nn.Dropout(0.5))
                ups.append(nn.Sequential(*layers))
                up_ch = 2 * f(level - 1)
            self.ups = nn.ModuleList(ups)
            self.out = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(up_ch, ch, 4, 2, 1, bias=True), nn.Tanh())

        def forward(self, x):
            skips = []
            for d in self.downs:
                x = d(x)
                skips.append(x)
            up = skips[-1]
            for i, u in enumerate(self.ups):
                level = n - 1 - i
                up = torch.cat([skips[level - 1], u(up)], 1)
            return self.out(up)

    return Unet()


def build(torch, row):
    F = torch.nn.functional
    c, B = row["net"], row["batch"]
    assert c["loss"] == "bce"
    G = unet(torch, c)
    D = patch_discriminator(torch, 2 * c["channels"], c["ndf"], c["dLayers"], c["norm"])
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
