package runtime

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
	"github.com/flowstone-go/flowstone/strategy"
	"github.com/riverqueue/river"
)

// Errors of gate resolution.
var (
	// ErrGateResolved: the gate was already approved, rejected or timed out.
	ErrGateResolved = errors.New("gate already resolved")
	// ErrNotWaiting: the asset is not a gate waiting for a decision.
	ErrNotWaiting = errors.New("not a waiting gate")
	// ErrBadToken: a gate link's token is malformed, forged or expired.
	ErrBadToken = errors.New("invalid gate token")
	// ErrNoSecret: gates need Config.Secret.
	ErrNoSecret = errors.New("no secret for gate links")
)

func (e *Engine) checkSecret() error {
	var gated []string
	for _, b := range e.bindings {
		for _, a := range b.pipeline.assets {
			if s, ok := a.Strategy.(strategy.SecretUser); ok && s.UsesSecret() {
				gated = append(gated, b.pipeline.name+"."+a.Key)
			}
		}
	}
	if len(gated) == 0 || len(e.cfg.Secret) >= 16 {
		return nil
	}
	sort.Strings(gated)
	return fmt.Errorf("%w: %s sign their approval links; set Config.Secret (16 bytes or more, the same in every process)", ErrNoSecret, strings.Join(gated, ", "))
}

// Gate is a gate asset of a run, addressed by its Ref: waiting for a
// decision, or decided.
type Gate struct {
	Ref
	Pipeline string
	// Since is when its function started.
	Since time.Time
	// Decision is its stored decision; nil while none is. A waiting gate
	// holds one for the moment between the decision and the job that
	// applies it.
	Decision *GateDecision
}

// GateDecision is a gate's stored decision.
type GateDecision struct {
	// Action is strategy.GateApprove, GateReject or, for a timeout,
	// OnTimeout's action.
	Action string
	// By names who decided. Verified says the name comes from an
	// authenticated identity (a signed-in user of the page, an
	// authenticating proxy's header in front of GateHandler, the gate's
	// own timeout), not from the decider's own say (a name typed on a
	// gate link's page, --by on the command line, a bearer-token client's
	// "by", Engine.Approve).
	By       string
	Verified bool
	Reason   string
	At       time.Time
}

// Decider words who decided for people: the name, followed by
// " (unverified)" when no sign-in vouched for it.
func (d GateDecision) Decider() string {
	if d.Verified {
		return d.By
	}
	return d.By + " (unverified)"
}

// Outcome words the action for people: approved, rejected or failed.
func (d GateDecision) Outcome() string { return pastTense(d.Action) }

func toGateDecision(d strategy.GateDecision) *GateDecision {
	return &GateDecision{Action: d.Action, By: d.By, Verified: d.Verified, Reason: d.Reason, At: d.At}
}

// Gates lists the gates waiting for a decision, oldest first, in pipeline
// (every pipeline when empty).
func (e *Engine) Gates(ctx context.Context, pipeline string) ([]Gate, error) {
	rows, err := e.st.Waiting(ctx, e.be.pool(), pipeline, strategy.GateDecisionState)
	if err != nil {
		return nil, err
	}
	var out []Gate
	for _, w := range rows {
		if g, ok := e.gate(w); ok {
			out = append(out, g)
		}
	}
	return out, nil
}

// DecidedGates lists the gates with a stored decision in pipeline (every
// pipeline when empty), at most limit (0 means 50), newest run first:
// who decided what, verified or not.
func (e *Engine) DecidedGates(ctx context.Context, pipeline string, limit int) ([]Gate, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, err := e.st.StatesNamed(ctx, e.be.pool(), pipeline, strategy.GateDecisionState, limit)
	if err != nil {
		return nil, err
	}
	var out []Gate
	for _, w := range rows {
		if g, ok := e.gate(w); ok {
			out = append(out, g)
		}
	}
	return out, nil
}

// gate converts a stored gate row, leaving out assets this process binds
// as something other than a gate.
func (e *Engine) gate(w store.Waiting) (Gate, bool) {
	g := Gate{Ref: Ref{RunID: w.Run, Asset: w.Asset, Partition: flowstone.Partition(w.Partition)}, Pipeline: w.Pipeline}
	if w.Since != 0 {
		g.Since = time.UnixMicro(w.Since)
	}
	if b, ok := e.bindings[g.Pipeline]; ok {
		if a := b.pipeline.Asset(g.Asset); a == nil || !isGate(a) {
			return g, false
		}
	}
	if w.State != "" {
		var d strategy.GateDecision
		if json.Unmarshal([]byte(w.State), &d) == nil {
			g.Decision = toGateDecision(d)
		}
	}
	return g, true
}

func isGate(a *AssetDef) bool {
	_, ok := a.Strategy.(strategy.Gate)
	return ok
}

// Decision is what Engine.Decide records for a gate.
type Decision struct {
	// Action is strategy.GateApprove or strategy.GateReject.
	Action string
	// By names who decides; required. Verified says the caller
	// authenticated that name (see GateDecision.Verified).
	By       string
	Verified bool
	Reason   string
}

// Approve approves the gate ref: its held value becomes its materialization
// and its dependents start. by and reason are recorded, by as the caller
// says it (unverified: see Decide). A ref outside its run is refused with
// ErrNotInRun.
func (e *Engine) Approve(ctx context.Context, ref Ref, by, reason string) error {
	return e.Decide(ctx, ref, Decision{Action: strategy.GateApprove, By: by, Reason: reason})
}

// Reject rejects the gate ref: it fails, and its dependents are
// upstream_failed. by is recorded unverified (see Decide). A ref outside
// its run is refused with ErrNotInRun.
func (e *Engine) Reject(ctx context.Context, ref Ref, by, reason string) error {
	return e.Decide(ctx, ref, Decision{Action: strategy.GateReject, By: by, Reason: reason})
}

// Decide approves or rejects the gate ref as Approve and Reject do,
// recording d.By as verified when d.Verified says the caller
// authenticated it (a program's own sign-in). Only the first decision of
// a gate counts: a later one is refused with ErrGateResolved, saying who
// decided what and when, and changes nothing.
func (e *Engine) Decide(ctx context.Context, ref Ref, d Decision) error {
	if d.Action != strategy.GateApprove && d.Action != strategy.GateReject {
		return fmt.Errorf("gate decision %q: want approve or reject", d.Action)
	}
	return e.decide(ctx, ref, strategy.GateDecision{Action: d.Action, By: strings.TrimSpace(d.By), Verified: d.Verified, Reason: d.Reason, At: time.Now()})
}

// decision reads the stored decision of gate ref; nil when there is none.
func (e *Engine) decision(ctx context.Context, q querier, ref Ref) (*GateDecision, error) {
	prior, decided, err := e.st.State(ctx, q, ref.node(), strategy.GateDecisionState)
	if err != nil || !decided {
		return nil, err
	}
	var d strategy.GateDecision
	_ = json.Unmarshal([]byte(prior), &d)
	return toGateDecision(d), nil
}

// decide stores the first decision for a waiting gate and schedules the
// job that applies it, in one transaction.
func (e *Engine) decide(ctx context.Context, ref Ref, d strategy.GateDecision) error {
	if err := e.writable(); err != nil {
		return err
	}
	if strings.TrimSpace(d.By) == "" {
		return fmt.Errorf("%s of %s: say who decides", d.Action, ref.Asset)
	}
	data, _ := json.Marshal(d)
	err := e.be.inTx(ctx, func(tx txn) error {
		node, err := e.resolveRef(ctx, tx, ref)
		if err != nil {
			return err
		}
		b, ok := e.bindings[node.pipeline]
		if !ok {
			return fmt.Errorf("%w: %s (bind it to decide its gates)", ErrUnknownPipeline, node.pipeline)
		}
		a := b.pipeline.Asset(ref.Asset)
		if a == nil || !isGate(a) {
			return fmt.Errorf("%w: %s is not a gate", ErrNotWaiting, ref.Asset)
		}
		prior, err := e.decision(ctx, tx, ref)
		if err != nil {
			return err
		}
		if prior != nil {
			return resolvedErr(ref, prior)
		}
		if node.status != StatusWaiting {
			return fmt.Errorf("%w: gate %s is %s", ErrNotWaiting, ref, node.status)
		}
		saved, err := e.st.SaveState(ctx, tx, ref.node(), strategy.GateDecisionState, string(data))
		if err != nil {
			return err
		}
		if !saved { // the timeout decided at this very moment
			return fmt.Errorf("%w: gate %s", ErrGateResolved, ref)
		}
		signal, _ := json.Marshal(strategy.GateSignal{})
		run := &runCtx{id: ref.RunID, p: b.pipeline}
		return tx.insertJobs(ctx, []river.InsertManyParams{e.resumeJob(run, a, ref.Partition, signal, time.Time{})})
	})
	if err != nil {
		return err
	}
	e.log.InfoContext(ctx, "gate decided", "run", ref.RunID, "asset", ref.Asset, "partition", string(ref.Partition), "action", d.Action, "by", d.By, "verified", d.Verified)
	return nil
}

// resolvedErr refuses a second decision of gate ref, saying who decided
// first.
func resolvedErr(ref Ref, d *GateDecision) error {
	return fmt.Errorf("%w: gate %s was %s by %s at %s", ErrGateResolved, ref, pastTense(d.Action), d.Decider(), d.At.UTC().Format(time.RFC3339))
}

// gateClaims is what a gate link carries.
type gateClaims struct {
	Run       string `json:"r"`
	Asset     string `json:"a"`
	Partition string `json:"p,omitempty"`
	Action    string `json:"x"`
	Expires   int64  `json:"e"`
}

// GateToken returns a signed token that approves (action "approve") or
// rejects ("reject") the gate ref until ttl has passed. Put it in a link to
// GateHandler: ?token=.... The token carries the ref's partition under the
// signature, so a link decides that partition's gate only.
func (e *Engine) GateToken(ref Ref, action string, ttl time.Duration) (string, error) {
	if len(e.cfg.Secret) < 16 {
		return "", ErrNoSecret
	}
	if action != strategy.GateApprove && action != strategy.GateReject {
		return "", fmt.Errorf("gate action %q: want approve or reject", action)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("gate token ttl %s: must be positive", ttl)
	}
	body, _ := json.Marshal(gateClaims{Run: ref.RunID, Asset: ref.Asset, Partition: string(ref.Partition), Action: action, Expires: time.Now().Add(ttl).Unix()})
	enc := base64.RawURLEncoding
	payload := enc.EncodeToString(body)
	return payload + "." + enc.EncodeToString(e.sign(payload)), nil
}

func (e *Engine) sign(payload string) []byte {
	m := hmac.New(sha256.New, e.cfg.Secret)
	m.Write([]byte("flowstone-gate:" + payload))
	return m.Sum(nil)
}

// verifyGateToken checks a token's signature in constant time, then its
// expiry.
func (e *Engine) verifyGateToken(token string) (gateClaims, error) {
	var c gateClaims
	if len(e.cfg.Secret) < 16 {
		return c, ErrNoSecret
	}
	payload, sig, ok := strings.Cut(token, ".")
	if !ok {
		return c, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, e.sign(payload)) {
		return c, fmt.Errorf("%w: bad signature", ErrBadToken)
	}
	body, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || json.Unmarshal(body, &c) != nil {
		return c, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	if time.Now().Unix() >= c.Expires {
		return c, fmt.Errorf("%w: expired at %s", ErrBadToken, time.Unix(c.Expires, 0).UTC().Format(time.RFC3339))
	}
	return c, nil
}

func (c gateClaims) ref() Ref {
	return Ref{RunID: c.Run, Asset: c.Asset, Partition: flowstone.Partition(c.Partition)}
}

// partitionPhrase words a partition for the gate page: "" when
// unpartitioned.
func partitionPhrase(p string) string {
	if p == "" {
		return ""
	}
	return " (partition " + p + ")"
}

// pastTense words a gate action for messages.
func pastTense(action string) string {
	switch action {
	case strategy.GateApprove:
		return "approved"
	case strategy.GateReject:
		return "rejected"
	case strategy.GateFail:
		return "failed"
	}
	return action
}
