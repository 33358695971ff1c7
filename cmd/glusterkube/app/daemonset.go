package app

import (
	"context"
	"errors"
)

// daemonsetCommand is a placeholder until its issue lands.
func daemonsetCommand() *Command {
	return &Command{
		Name:  "daemonset",
		Short: "daemonset (not built yet)",
		Run: func(context.Context, *Globals, []string) error {
			return errors.New("daemonset is not built yet")
		},
	}
}
