// Package migrate converts PersistentVolumes with the in-tree glusterfs
// source, which kubelets from Kubernetes 1.26 on cannot mount, into PVs
// with a csi source for glusterkube's CSI driver — same name, same claim,
// same capacity, access modes, class, GID and reclaim policy — and then
// removes the per-claim Endpoints and Service nothing uses any more. A PV's
// source cannot be edited, so each PV is deleted and created again; this
// package makes that safe to interrupt at any point.
//
// It owns:
//   - the plan (Plan): for every glusterfs PV, where it came from (the
//     in-tree provisioner, glusterkube's in-tree mode, or a static PV
//     naming a heketi or plain GlusterFS volume), the CSI PV it becomes,
//     or why it cannot be converted (no such volume, a sub-directory
//     path, a claim used by running pods...);
//   - the conversion (Apply) and its record (one ConfigMap per PV in
//     flight), and the way back (Restore).
//
// It never deletes anything from heketi or GlusterFS, and it never
// deletes a PV before the full old object is recorded.
//
// # The steps of one conversion, and why a crash anywhere is safe
//
// Every step first reads what the cluster holds, so running it twice is
// running it once, and a re-run after a crash resumes at the first step
// whose effect is missing:
//
//  1. retain: the old PV's reclaim policy becomes Retain, and the policy
//     it had goes into an annotation on the PV in the same write (never
//     overwritten once there). From now on no claim deletion can make
//     anything delete the heketi volume. Crash after: the PV is intact,
//     Retain; the re-run reads the original policy from the annotation.
//  2. record: a ConfigMap in the record namespace holds the whole old PV
//     (as it is after step 1) and the CSI PV it becomes; the claim gets an
//     annotation naming the PV being converted. A ConfigMap and not an
//     annotation on the claim: it also covers PVs without a claim, and it
//     survives the claim being deleted meanwhile, when losing the record
//     would lose the PV. Not a Secret: a PV holds no secret (heketi keys
//     stay in their Secrets, PVs only name them). Crash after: the old PV
//     is intact; the re-run finds the record and goes on.
//  3. delete: the pods using the claim are counted again (none may run),
//     the old PV is deleted with a UID precondition, and its protection
//     finalizers (pv-protection, which holds a Bound PV forever, and the
//     PV controller's in-tree deletion one) are removed, which is safe
//     because no pod uses the claim and the volume is Retain. The claim
//     becomes Lost. Crash after: the PV is gone or terminating; the
//     record holds it.
//  4. create: the CSI PV is created under the same name, pre-bound to the
//     claim (claimRef with the claim's UID), still Retain, carrying the
//     old policy in its annotation and the old PV's UID. Crash after: the
//     re-run finds a PV of that name made by this conversion and goes on.
//     Should the API server refuse the new PV, the old one is created
//     again from the record instead (Restore).
//  5. bind: the PV controller binds a claim whose volumeName names a PV
//     pre-bound to it, from Lost too (syncBoundClaim: the volume exists
//     and its claimRef has the claim's UID → bind → Bound). It does so on
//     the claim's next sync; rewriting the claim's annotation (to "<pv>
//     rebind <time>") is a claim update that brings that sync now instead
//     of at the next resync.
//  6. reclaim: the old reclaim policy comes back, once the claim is Bound.
//  7. forget: the claim's annotation and the record are deleted. Until
//     here a restore is possible and needs the claim's Endpoints, so they
//     stay until:
//  8. cleanup: the claim's Endpoints and Service go, if a provisioner made
//     them for this claim (labels) and no other PV and no pod uses them.
//     The converted PV names them (AnnMigratedFrom), so a crash before
//     this step leaves them to the next plan (StateCleanup), not lost.
//
// Restore runs the same machinery backwards from the record: the CSI PV
// (if one was made) is deleted and the old PV created again, bound to its
// claim, with its old policy. Apply resumes every record it finds, in the
// direction the record says, before it starts anything new.
package migrate
