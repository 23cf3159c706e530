-- Shop owners' pages (src/redeem/owner.rs): a member of shop staff can be removed (the row stays,
-- with when; their token is revoked, their sessions end and their till PIN is deleted in the same
-- transaction), and a shop's owner can be a user who signs in with a name and password on any
-- computer (role `shop`, scoped to the shop).
ALTER TABLE shop_staff ADD COLUMN removed_at BIGINT;

ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('admin', 'staff', 'auditor', 'shop'));
