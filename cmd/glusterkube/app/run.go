package app

import (
	"context"
	"errors"
)

// runCommand is a placeholder until its issue lands.
func runCommand() *Command {
	return &Command{
		Name:  "run",
		Short: "run (not built yet)",
		Run: func(context.Context, *Globals, []string) error {
			return errors.New("run is not built yet")
		},
	}
}
