"""PyTorch reference of Gantry's DCGAN step (packages/dcgan + core's LatentGanTask), 28×28 (or 32×32).

G: z → linear (no bias) → BN → ReLU → reshape to base×base → [ConvT k4 s2 + BN + ReLU]… → ConvT k4 s2 → tanh.
D: conv k4 s2 + LeakyReLU (no BN on the first layer) → [conv k4 s2 + BN + LeakyReLU]… → flatten → linear.
Step (as LatentGanTask): D update on real x and on G(z) (G run without gradient), then a G update with a fresh
G(z) and D frozen; non-saturating BCE on logits; Adam 2e-4, β1 0.5.
"""

from common import bce_d, bce_g, adam, run, set_requires_grad


def levels(size):
    return 3 if size == 32 else 2


def build_nets(torch, c):
    nn = torch.nn
    n = levels(c["imageSize"])
    base = c["imageSize"] // 2**n
    top = c["ngf"] * 2 ** (n - 1)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Sequential(nn.Linear(c["latentDim"], base * base * top, bias=False), nn.BatchNorm1d(base * base * top), nn.ReLU())
            ups = []
            ch = top
            for level in range(n - 2, -1, -1):
                out = c["ngf"] * 2**level
                ups += [nn.ConvTranspose2d(ch, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
                ch = out
            ups += [nn.ConvTranspose2d(ch, 1, 4, 2, 1, bias=True), nn.Tanh()]
            self.ups = nn.Sequential(*ups)

        def forward(self, z):
            return self.ups(self.fc(z).view(-1, top, base, base))

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            seq = [nn.Conv2d(1, c["ndf"], 4, 2, 1, bias=True), nn.LeakyReLU(0.2)]
            ch = c["ndf"]
            for level in range(1, n):
                out = c["ndf"] * 2**level
                seq += [nn.Conv2d(ch, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out), nn.LeakyReLU(0.2)]
                ch = out
            self.convs = nn.Sequential(*seq)
            self.fc = nn.Linear(ch * base * base, 1)

        def forward(self, x):
            return self.fc(self.convs(x).flatten(1))

    return Generator(), Discriminator()


def build(torch, row):
    F = torch.nn.functional
    c, B = row["net"], row["batch"]
    assert c["loss"] == "bce"
    G, D = build_nets(torch, c)
    G.train()
    D.train()
    optG, optD = adam(torch, G.parameters()), adam(torch, D.parameters())
    s = c["imageSize"]
    x = torch.rand(B, 1, s, s) * 2 - 1
    z = torch.randn(B, c["latentDim"])

    def step(i):
        with torch.no_grad():
            fake = G(z)
        real_score = D(x)
        d = bce_d(F, real_score, D(fake))
        d_x = real_score.mean()
        optD.zero_grad(set_to_none=True)
        d.backward()
        optD.step()

        set_requires_grad([D], False)
        g = bce_g(F, D(G(z)))
        optG.zero_grad(set_to_none=True)
        g.backward()
        optG.step()
        set_requires_grad([D], True)
        return [d.item(), d_x.item(), g.item()]

    return step, {"G": G, "D": D}, {"G": (z,), "D": (x,)}


if __name__ == "__main__":
    run(build)
