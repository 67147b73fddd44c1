"""Build a spiking network, train it for two epochs on the digits that scikit-learn ships, plot its spikes."""
import torch
import torch.nn as nn
import snn
from snn import layers, neuron, encoding, viz
from snn.data import load, batches

T = 4
net = nn.Sequential(layers.Flatten(step_mode="m"), layers.Linear(64, 128, step_mode="m"),
                    neuron.LIF(tau=2.0, step_mode="m"), layers.Linear(128, 10, step_mode="m"))
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
x_train, y_train = load("digits", "train")                 # [N, 1, 8, 8] in [0, 1], labels [N]
for epoch in range(2):
    for x, y in batches(x_train, y_train, 64, shuffle=True):
        loss = nn.functional.cross_entropy(net(encoding.direct(x, T)).mean(0), y)  # rate-coded logits
        opt.zero_grad(); loss.backward(); opt.step()
        snn.reset(net)                                     # forget membrane potentials between batches
x_test, y_test = load("digits", "test")
with torch.no_grad():
    acc = (net(encoding.direct(x_test, T)).mean(0).argmax(1) == y_test).float().mean()
    snn.reset(net)
    spikes = net[:3](encoding.direct(x_test[:1], T))       # the hidden layer's spikes [T, 1, 128]
print(f"test accuracy {acc:.3f}; neuron backend: {net[2].last_backend}")
viz.raster(spikes[:, 0], "raster.png", title="hidden layer, one test digit")
