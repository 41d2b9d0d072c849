package strategy

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flowstone-go/flowstone"
)

// State names under which a gate keeps its value and its decision.
const (
	GateValueState    = "gate.value"
	GateDecisionState = "gate.decision"
)

// Gate actions, as recorded in a GateDecision.
const (
	GateApprove = "approve"
	GateReject  = "reject"
	GateFail    = "fail"
)

// GateDecision resolves a waiting gate. The engine stores one per run,
// asset and partition (Engine.Approve, Engine.Reject, a signed link, or the gate's
// timeout); the first stored wins.
type GateDecision struct {
	Action string `json:"action"`
	By     string `json:"by"`
	// Verified says By comes from an authenticated identity rather than
	// from the decider's own say.
	Verified bool      `json:"verified,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

// GateSignal is the payload of a gate's Resume job.
type GateSignal struct {
	// Timeout is set on the job scheduled for gate_timeout.
	Timeout bool `json:"timeout,omitempty"`
}

// Gate is the strategy of an asset whose value waits for an approval: its
// function runs, then the materialization waits; dependents start only
// once it is approved. A rejection fails the asset.
type Gate struct {
	// Timeout resolves an unanswered gate with OnTimeout (fail, approve or
	// reject; default fail).
	Timeout   time.Duration
	OnTimeout string
}

// UsesSecret implements SecretUser: gates are resolved through signed
// links.
func (Gate) UsesSecret() bool { return true }

// Run implements Strategy: it computes and holds the value.
func (g Gate) Run(ctx context.Context, t Task) (Result, error) {
	v, err := t.Call(ctx)
	if err != nil {
		if reason, ok := flowstone.SkipReason(err); ok {
			return Skip(reason), nil
		}
		return Result{}, err
	}
	// The first value held is the one approved, whatever a retry computes.
	if _, err := t.SaveState(ctx, GateValueState, v); err != nil {
		return Result{}, fmt.Errorf("hold value of gate %s: %w", t.Asset().Key(), err)
	}
	if g.Timeout > 0 {
		if err := t.Resume(ctx, time.Now().Add(g.Timeout), GateSignal{Timeout: true}); err != nil {
			return Result{}, err
		}
	}
	return Wait("awaiting approval"), nil
}

// Resume implements Resumer: it applies the stored decision, storing the
// timeout's first when the gate timed out unanswered.
func (g Gate) Resume(ctx context.Context, t Task, payload json.RawMessage) (Result, error) {
	var sig GateSignal
	if err := json.Unmarshal(payload, &sig); err != nil {
		return Result{}, flowstone.Permanentf("gate signal: %v", err)
	}
	var d GateDecision
	if sig.Timeout {
		action := g.OnTimeout
		if action == "" {
			action = GateFail
		}
		if _, err := t.SaveState(ctx, GateDecisionState, GateDecision{Action: action, By: "timeout", Verified: true, Reason: "no answer within " + g.Timeout.String(), At: time.Now()}); err != nil {
			return Result{}, err
		}
	}
	found, err := t.LoadState(ctx, GateDecisionState, &d)
	if err != nil {
		return Result{}, err
	}
	if !found {
		return Result{}, flowstone.Permanentf("gate %s resumed without a decision", t.Asset().Key())
	}
	switch d.Action {
	case GateApprove:
		var held json.RawMessage
		if _, err := t.LoadState(ctx, GateValueState, &held); err != nil {
			return Result{}, err
		}
		return Done(held), nil
	case GateReject:
		return Result{}, flowstone.Permanentf("rejected by %s: %s", d.By, d.Reason)
	default:
		return Result{}, flowstone.Permanentf("gate timed out: %s", d.Reason)
	}
}
