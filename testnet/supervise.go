package testnet

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// SuperviseOptions configure Processes.Supervise.
type SuperviseOptions struct {
	// Schedule is applied, each perturbation at its time after Supervise
	// starts; nil runs none.
	Schedule []Perturbation
	// GlobalArgs start the nodes a perturbation restarts, as in
	// ProcessOptions.
	GlobalArgs []string
	// Note, if set, is told of each expected exit, each adoption of a
	// restarted process and each step of the schedule. It is called from
	// more than one goroutine.
	Note func(string)
}

// Supervise runs the healthy nodes of l: it watches them (Watch) and
// applies opts.Schedule (RunSchedule, restarts attached to this program)
// until ctx ends (nil), a node ends that no perturbation ended (a
// *NodeExitError) or a perturbation fails. It returns once the watcher and
// the schedule have ended, so that a restart the schedule was making has
// written its pid file and Stop stops that process too; it does not stop
// the nodes.
func (ps *Processes) Supervise(ctx context.Context, l *Layout, opts SuperviseOptions) error {
	note := opts.Note
	if note == nil {
		note = func(string) {}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var watchErr error
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		watchErr = ps.Watch(runCtx, note)
	}()
	schedDone, schedErr := ps.runSchedule(runCtx, l, opts, note)
	// finish ends the schedule and the watcher.
	finish := func(failure error) error {
		cancel()
		<-schedDone
		<-watchDone
		return failure
	}
	schedC := schedDone // nil once the schedule has ended
	for {
		select {
		case <-ctx.Done():
			return finish(nil)
		case <-watchDone:
			return finish(watchErr)
		case <-schedC:
			schedC = nil
			if err := *schedErr; err != nil {
				note(fmt.Sprintf("schedule failed: %v", err))
				return finish(err)
			}
			if len(opts.Schedule) > 0 {
				note("schedule done")
			}
		}
	}
}

// runSchedule starts the schedule in the background. The channel is closed
// when it has ended, at once for an empty schedule; the error is valid
// after that.
func (ps *Processes) runSchedule(ctx context.Context, l *Layout, opts SuperviseOptions, note func(string)) (<-chan struct{}, *error) {
	done, errp := make(chan struct{}), new(error)
	if len(opts.Schedule) == 0 {
		close(done)
		return done, errp
	}
	note(fmt.Sprintf("running %d perturbations from %s", len(opts.Schedule), filepath.Join(l.Dir, ScheduleFile)))
	// Nodes the schedule restarts end with this program, like the others.
	popts := PerturbOptions{GlobalArgs: opts.GlobalArgs, Attached: true}
	apply := func(ctx context.Context, p Perturbation) error {
		return Perturb(ctx, l, p.Node, p.Action, popts)
	}
	start := time.Now()
	go func() {
		defer close(done)
		*errp = RunSchedule(ctx, opts.Schedule, start, apply, note)
	}()
	return done, errp
}
