//! Groups as the app sees them: [`GroupInfo`] and the [`GroupEdit`]s it asks for.

/// A member user of a group.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GroupMember {
    /// The user id.
    pub user: String,
    /// Whether they are an admin.
    pub admin: bool,
}

/// A group's signed state as it stands.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GroupInfo {
    /// The group id (32 random bytes).
    pub id: Vec<u8>,
    /// How many changes the group has had.
    pub version: u64,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// The avatar reference (empty when unset).
    pub avatar: Vec<u8>,
    /// Only admins may send.
    pub only_admins_send: bool,
    /// Only admins may change the name, description and avatar.
    pub only_admins_edit_info: bool,
    /// The member users.
    pub members: Vec<GroupMember>,
}

impl From<e2ee_client::GroupInfo> for GroupInfo {
    fn from(g: e2ee_client::GroupInfo) -> Self {
        Self {
            id: g.id,
            version: g.version,
            name: g.name,
            description: g.description,
            avatar: g.avatar,
            only_admins_send: g.only_admins_send,
            only_admins_edit_info: g.only_admins_edit_info,
            members: g
                .members
                .into_iter()
                .map(|m| GroupMember {
                    user: m.user,
                    admin: m.admin,
                })
                .collect(),
        }
    }
}

/// The app's view of each group in `groups`.
pub(crate) fn group_infos(groups: Vec<e2ee_client::GroupInfo>) -> Vec<GroupInfo> {
    groups.into_iter().map(GroupInfo::from).collect()
}

/// One change to a group.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum GroupEdit {
    /// Add a user, as an admin or a member.
    Add {
        /// The user.
        user: String,
        /// As an admin.
        admin: bool,
    },
    /// Remove a member.
    Remove {
        /// The member.
        user: String,
    },
    /// Our user leaves.
    Leave,
    /// Make a member an admin.
    Promote {
        /// The member.
        user: String,
    },
    /// Make an admin a member.
    Demote {
        /// The admin.
        user: String,
    },
    /// Rename.
    Rename {
        /// The new name.
        name: String,
    },
    /// Set the description.
    Describe {
        /// The new description.
        description: String,
    },
    /// Set the avatar reference.
    SetAvatar {
        /// The reference.
        avatar: Vec<u8>,
    },
    /// Set the permissions.
    Settings {
        /// Only admins may send.
        only_admins_send: bool,
        /// Only admins may edit the info.
        only_admins_edit_info: bool,
    },
}

impl From<GroupEdit> for e2ee_client::GroupEdit {
    fn from(edit: GroupEdit) -> Self {
        use e2ee_client::GroupEdit as E;
        match edit {
            GroupEdit::Add { user, admin } => E::Add { user, admin },
            GroupEdit::Remove { user } => E::Remove(user),
            GroupEdit::Leave => E::Leave,
            GroupEdit::Promote { user } => E::Promote(user),
            GroupEdit::Demote { user } => E::Demote(user),
            GroupEdit::Rename { name } => E::Rename(name),
            GroupEdit::Describe { description } => E::Describe(description),
            GroupEdit::SetAvatar { avatar } => E::SetAvatar(avatar),
            GroupEdit::Settings {
                only_admins_send,
                only_admins_edit_info,
            } => E::Settings {
                only_admins_send,
                only_admins_edit_info,
            },
        }
    }
}
