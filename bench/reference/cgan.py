"""PyTorch reference of Gantry's cGAN step (packages/cgan + core's LatentGanTask), 28×28, 10 classes.

G: z ⊕ label embedding → linear (no bias) 7×7×2ngf → BN → ReLU → ConvT k4 s2 + BN + ReLU → ConvT k4 s2 → tanh.
With conditionalBn, each BN is followed by the label's own per-channel scale and shift (embeddings [k, C]).
D (projection, Miyato & Koyama 2018): conv k4 s2 + LeakyReLU → conv k4 s2 + BN + LeakyReLU → features;
score = linear(features) + ⟨LeakyReLU(linear₂₅₆(features)), embedding₂₅₆(label)⟩. With conditioning 'concat':
a label map (embedding → linear 784) stacked onto the image instead. With auxWeight > 0 (the default 0.3),
ACGAN's auxiliary classifier: class logits = linear(features), cross-entropy on real labels in D's loss and on
the requested labels of the fakes in G's, times auxWeight.
Step as LatentGanTask (see dcgan.py).
"""

from common import bce_d, bce_g, adam, run, set_requires_grad


def build_nets(torch, c):
    nn = torch.nn
    ngf, ndf, k = c["ngf"], c["ndf"], c["numClasses"]

    class ClassAffine(nn.Module):
        def __init__(self, ch):
            super().__init__()
            self.gamma, self.beta = nn.Embedding(k, ch), nn.Embedding(k, ch)
            nn.init.normal_(self.gamma.weight, 1.0, 0.02)
            nn.init.zeros_(self.beta.weight)

        def forward(self, x, label):
            shape = (-1, x.shape[1]) + (1,) * (x.dim() - 2)
            return x * self.gamma(label).view(shape) + self.beta(label).view(shape)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(k, c["embeddingDim"])
            self.fc = nn.Linear(c["latentDim"] + c["embeddingDim"], 7 * 7 * ngf * 2, bias=False)
            self.bn1, self.bn2 = nn.BatchNorm1d(7 * 7 * ngf * 2), nn.BatchNorm2d(ngf)
            self.up1 = nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False)
            self.up2 = nn.ConvTranspose2d(ngf, 1, 4, 2, 1, bias=True)
            cond = c.get("conditionalBn", False)
            self.aff1 = ClassAffine(7 * 7 * ngf * 2) if cond else None
            self.aff2 = ClassAffine(ngf) if cond else None

        def norm_relu(self, x, bn, aff, label):
            x = bn(x)
            return torch.relu(aff(x, label) if aff else x)

        def forward(self, z, label):
            h = self.norm_relu(self.fc(torch.cat([z, self.emb(label)], 1)), self.bn1, self.aff1, label)
            h = self.norm_relu(self.up1(h.view(-1, ngf * 2, 7, 7)), self.bn2, self.aff2, label)
            return torch.tanh(self.up2(h))

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            self.concat = c["conditioning"] == "concat"
            in_ch = 1
            if self.concat:
                self.map_emb = nn.Embedding(k, c["embeddingDim"])
                self.map_fc = nn.Linear(c["embeddingDim"], 28 * 28)
                in_ch = 2
            self.convs = nn.Sequential(
                nn.Conv2d(in_ch, ndf, 4, 2, 1, bias=True), nn.LeakyReLU(0.2),
                nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2),
            )
            feat = 7 * 7 * ndf * 2
            self.fc = nn.Linear(feat, 1)
            if not self.concat:
                self.h = nn.Sequential(nn.Linear(feat, 256), nn.LeakyReLU(0.2))
                self.proj_emb = nn.Embedding(k, 256)
            self.cls = nn.Linear(feat, k) if c.get("auxWeight", 0) > 0 else None

        def forward(self, x, label):
            if self.concat:
                x = torch.cat([x, self.map_fc(self.map_emb(label)).view(-1, 1, 28, 28)], 1)
            f = self.convs(x).flatten(1)
            score = self.fc(f)
            if not self.concat:
                score = score + (self.h(f) * self.proj_emb(label)).sum(1, keepdim=True)
            return score, (self.cls(f) if self.cls is not None else None)

    return Generator(), Discriminator()


def build(torch, row):
    F = torch.nn.functional
    c, B = row["net"], row["batch"]
    assert c["loss"] == "bce"
    G, D = build_nets(torch, c)
    G.train()
    D.train()
    optG, optD = adam(torch, G.parameters()), adam(torch, D.parameters())
    x = torch.rand(B, 1, 28, 28) * 2 - 1
    z = torch.randn(B, c["latentDim"])
    y = torch.arange(B) % c["numClasses"]
    y_fake = torch.arange(B) % c["numClasses"]

    w = c.get("auxWeight", 0)

    def step(i):
        with torch.no_grad():
            fake = G(z, y_fake)
        real_score, real_logits = D(x, y)
        d = bce_d(F, real_score, D(fake, y_fake)[0])
        if w > 0:
            d = d + w * F.cross_entropy(real_logits, y)
        d_x = real_score.mean()
        optD.zero_grad(set_to_none=True)
        d.backward()
        optD.step()

        set_requires_grad([D], False)
        fake_score, fake_logits = D(G(z, y_fake), y_fake)
        g = bce_g(F, fake_score)
        if w > 0:
            g = g + w * F.cross_entropy(fake_logits, y_fake)
        optG.zero_grad(set_to_none=True)
        g.backward()
        optG.step()
        set_requires_grad([D], True)
        return [d.item(), d_x.item(), g.item()]

    return step, {"G": G, "D": D}, {"G": (z, y_fake), "D": (x, y)}


if __name__ == "__main__":
    run(build)
