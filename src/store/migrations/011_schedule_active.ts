// Schedules can be paused (like GitLab's inactive schedules): a paused one keeps its cron,
// branch and variables but fires no more until it is resumed, from its next time after then.
export const sql = `
ALTER TABLE schedules ADD COLUMN active boolean NOT NULL DEFAULT true;
`;
