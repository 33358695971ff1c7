package app

import (
	"context"
	"errors"
)

// topologyCommand is a placeholder until its issue lands.
func topologyCommand() *Command {
	return &Command{
		Name:  "topology",
		Short: "topology (not built yet)",
		Run: func(context.Context, *Globals, []string) error {
			return errors.New("topology is not built yet")
		},
	}
}
