package cluster

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// putControl writes one halt or freeze to the bucket, trying again for a
// while: a restriction that did not reach the bucket holds on this node
// only (and on every node after a restart, from the database).
func (n *Node) putControl(key string, on bool) {
	v := "0"
	if on {
		v = "1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, err := n.controls.PutString(ctx, key, v)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			n.log.Error("halt or freeze not written to the cluster's bucket; other nodes learn it at their next start", "key", key, "err", err)
			return
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// putHeat writes the watchtower's heat of symbol when it changed.
func (n *Node) putHeat(ctx context.Context, symbol string, heat int) {
	n.mu.Lock()
	old, ok := n.heat[symbol]
	n.heat[symbol] = heat
	n.mu.Unlock()
	if ok && old == heat {
		return
	}
	if _, err := n.controls.PutString(ctx, "heat."+keyPart(symbol), strconv.Itoa(heat)); err != nil && ctx.Err() == nil {
		n.log.Warn("heat not written", "symbol", symbol, "err", err)
	}
}

// keyPart encodes an account or symbol as one token of a bucket key.
func keyPart(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func fromKeyPart(s string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return string(b), err == nil
}

// watchControls applies every halt, freeze and heat of the bucket to this
// node's guard: those in force at start, then each change.
func (n *Node) watchControls(ctx context.Context) error {
	w, err := n.controls.WatchAll(ctx)
	if err != nil {
		return err
	}
	n.done.Add(1)
	go func() {
		defer n.done.Done()
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					n.controlsReady.Store(true)
					continue
				}
				n.applyControl(e)
			}
		}
	}()
	return nil
}

func (n *Node) applyControl(e jetstream.KeyValueEntry) {
	kind, part, ok := strings.Cut(e.Key(), ".")
	if !ok {
		return
	}
	name, ok := fromKeyPart(part)
	if !ok {
		return
	}
	v := string(e.Value())
	if e.Operation() != jetstream.KeyValuePut {
		v = "0"
	}
	switch kind {
	case "halt":
		n.pipe.Risk.SetHalt(name, v == "1")
		if v != "1" {
			p := n.view
			p.mu.Lock()
			if p.w != nil {
				p.w.Release(name)
			}
			p.mu.Unlock()
		}
	case "freeze":
		n.pipe.Risk.SetFrozen(name, v == "1")
	case "done":
		n.carriedOut(name)
	case "heat":
		if n.liveFeed() {
			return // this node's watchtower feeds its engine the heat, sooner
		}
		if h, err := strconv.Atoi(v); err == nil {
			n.pipe.Risk.SetHeat(name, h)
		}
	}
}

// Halted returns the instruments halted in the cluster's bucket.
func (n *Node) Halted(ctx context.Context) ([]string, error) { return n.controlsOn(ctx, "halt") }

// Frozen returns the accounts frozen in the cluster's bucket.
func (n *Node) Frozen(ctx context.Context) ([]string, error) { return n.controlsOn(ctx, "freeze") }

func (n *Node) controlsOn(ctx context.Context, kind string) ([]string, error) {
	l, err := n.controls.ListKeysFiltered(ctx, kind+".>")
	if err != nil {
		return nil, err
	}
	var out []string
	for k := range l.Keys() {
		e, err := n.controls.Get(ctx, k)
		if err != nil || string(e.Value()) != "1" {
			continue
		}
		if name, ok := fromKeyPart(strings.TrimPrefix(k, kind+".")); ok {
			out = append(out, name)
		}
	}
	return out, nil
}

// SetHalt tells every node of the cluster that buying of symbol is halted
// (or resumed): the back office calls it through pipeline.Pipeline.SetHalt
// after telling this node's guard.
func (n *Node) SetHalt(symbol string, halted bool) { n.putControl("halt."+keyPart(symbol), halted) }

// SetFrozen tells every node of the cluster that account is frozen (or
// reopened).
func (n *Node) SetFrozen(account string, frozen bool) {
	n.putControl("freeze."+keyPart(account), frozen)
}
