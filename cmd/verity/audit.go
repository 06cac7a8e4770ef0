package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/client"
)

func init() {
	register(&cli.Command{
		Name:      "audit",
		Usage:     "print a job's audit timeline, flagging what happened before proof",
		ArgsUsage: "JOB_ID",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "api", Usage: "node API URL", Value: "http://127.0.0.1:27600", EnvVars: []string{"VERITY_API"}},
			&cli.BoolFlag{Name: "json", Usage: "print the timeline as JSON"},
		},
		Action: func(c *cli.Context) error {
			id, err := parseHashArg(c.Args().First())
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
			defer cancel()
			a, err := client.New(c.String("api")).Audit(ctx, id)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				printJSONLine(c.App.Writer, a)
				return nil
			}
			printAudit(c, a)
			return nil
		},
	})
}

func printAudit(c *cli.Context, a *api.Audit) {
	w := c.App.Writer
	fmt.Fprintf(w, "job %s: %s\n", a.JobID.Hex(), strings.ToUpper(string(a.Status)))
	var origin time.Time
	if len(a.Entries) > 0 {
		origin = a.Entries[0].Time
	}
	for _, e := range a.Entries {
		who := e.Client
		if e.Validator != nil {
			who = e.Name + " " + shortID(e.Validator.Hex())
		}
		what := e.Kind
		switch e.Kind {
		case api.AuditAction:
			what = "action " + fmt.Sprintf("%q", e.Name)
		case api.AuditCertificate:
			what = "certificate " + string(e.Status)
		}
		flags := ""
		if len(e.Flags) > 0 {
			flags = "  <- " + strings.ToUpper(strings.Join(e.Flags, ", "))
		}
		fmt.Fprintf(w, "  %s  +%-10s %-22s %s%s\n", e.Time.Format("15:04:05.000"), roundDuration(e.Time.Sub(origin)), what, who, flags)
	}
	fmt.Fprintf(w, "reads before proof: %d; actions before proof: %d; actions on a rejected output: %d\n",
		a.ReadsBeforeProof, a.ActionsBeforeProof, a.ActionsOnRejected)
}
