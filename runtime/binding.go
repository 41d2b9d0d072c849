package runtime

// Pipeline returns the pipeline the binding binds, so a program that
// builds its bindings once (a CLI, a server) can list or draw its
// pipelines without opening an engine.
func (b Binding) Pipeline() *Pipeline { return b.pipeline }
