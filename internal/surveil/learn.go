package surveil

// ForgetFindings drops what the watchtower concluded from the records it
// was fed, and keeps what it learnt of them: it is called once a guard has
// been warmed from a brokerage's history (pipeline.Learn), whose findings
// are never acted on. Open alerts, halts, freezes, held proceeds, R11's
// abnormal buying, R3's memory of convergence and each account's evidence of takeover and ring-seller
// mark are cleared; the accounts' devices, networks, positions, activity
// days and habits and the instruments' volumes, prices and the firm's usual
// buying of them stay.
func (w *Watch) ForgetFindings() {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.open)
	for _, in := range w.insts {
		in.halted = false
		in.r11At, in.r11Score, in.r11Pos = 0, 0, false
		in.r3At, in.r3Score = 0, 0
	}
	for _, a := range w.accts {
		a.frozen = false
		a.holds = nil
		a.evid, a.evidBits, a.evidIn = 0, 0, nil
		a.ringAt = 0
		a.r11In = nil
	}
}
