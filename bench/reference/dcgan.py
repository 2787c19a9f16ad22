"""PyTorch reference of Gantry's DCGAN step (packages/dcgan + core's LatentGanTask), 28×28 (or 32×32).

G: z → linear (no bias) → BN → ReLU → reshape to base×base → [ConvT k4 s2 + BN + ReLU]… → ConvT k4 s2 → tanh.
D: conv k4 s2 + LeakyReLU (no BN on the first layer) → [conv k4 s2 (k3 unpadded on an odd map) + BN + LeakyReLU]…
→ flatten → [linear → LeakyReLU at 28×28] → linear.
Step (as LatentGanTask): D update on real x and on G(z) (G run without gradient), then a G update with a fresh
G(z) and D frozen; non-saturating BCE on logits; Adam 2e-4, β1 0.5.
"""

from common import bce_d, bce_g, adam, run, set_requires_grad


def levels(size):
    return 3 if size == 32 else 2


def discriminator_defaults(size):
    """packages/dcgan's discriminatorDefaults: stride-2 convs down to 4×4 or less, a hidden layer at 28×28."""
    return (3, 512) if size == 28 else (levels(size), 0)


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

    d_layers, d_hidden = discriminator_defaults(c["imageSize"])
    d_layers, d_hidden = c.get("dLayers", d_layers), c.get("dHidden", d_hidden)

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            seq, ch, size = [], 1, c["imageSize"]
            for level in range(d_layers):
                out = c["ndf"] * 2**level
                # An odd map (7×7) halves by a 3×3 conv without padding, an even one by a 4×4 conv padded 1.
                k, p = (3, 0) if size % 2 else (4, 1)
                seq += [nn.Conv2d(ch, out, k, 2, p, bias=level == 0)]
                seq += [nn.BatchNorm2d(out)] if level else []
                seq += [nn.LeakyReLU(0.2)]
                ch, size = out, size // 2
            self.convs = nn.Sequential(*seq)
            features = ch * size * size
            hidden = [nn.Linear(features, d_hidden), nn.LeakyReLU(0.2)] if d_hidden else []
            self.fc = nn.Sequential(*hidden, nn.Linear(d_hidden or features, 1))

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
