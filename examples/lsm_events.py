"""A liquid state machine on event data: a fixed random spiking reservoir, only a linear readout trained."""
from snn.lsm.probe import load_event_split, raw_features, reservoir_for
from snn.lsm.readout import RidgeReadout

x_train, y_train, x_test, y_test = load_event_split("event-digits", 1000, 250)  # [T, B, 2*22*22] event counts
lsm = reservoir_for("event-digits", 500)           # 500 LIF neurons, Dale's law, smooth random input fields
f_train, f_test = (lsm.features(x, n_bins=3, features="all") for x in (x_train, x_test))  # [B, 3 kinds x 3 bins x N]
readout = RidgeReadout().fit(f_train, y_train)     # the only trained part
raw = RidgeReadout().fit(raw_features(x_train, 3), y_train)  # the same readout on the binned events
accuracy = lambda r, f: float((r.predict(f) == y_test).float().mean())  # noqa: E731
print(f"LSM {accuracy(readout, f_test):.3f}, raw events {accuracy(raw, raw_features(x_test, 3)):.3f}, "
      f"simulated by the {lsm.engine} engine")
