//! `e2ee client group ...`: groups from the command line. A group is named by its id in hex,
//! as `group create` prints it.

use clap::Subcommand;
use e2ee_client::{Client, GroupEdit, GroupInfo};

use crate::cli::{CliError, print_history, wait_stored};

#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// Create a group with us as its admin; prints its id.
    Create {
        /// Its name.
        name: String,
        /// The other members' user ids.
        members: Vec<String>,
    },
    /// List our groups.
    List,
    /// Show a group's name, settings and members.
    Show {
        /// The group id (hex).
        id: String,
    },
    /// Add a user (admins only).
    Add {
        /// The group id (hex).
        id: String,
        /// The user.
        user: String,
        /// As an admin.
        #[arg(long)]
        admin: bool,
    },
    /// Remove a member (admins only).
    Remove {
        /// The group id (hex).
        id: String,
        /// The member.
        user: String,
    },
    /// Leave the group.
    Leave {
        /// The group id (hex).
        id: String,
    },
    /// Rename the group.
    Rename {
        /// The group id (hex).
        id: String,
        /// The new name.
        name: String,
    },
    /// Send a message to the group and wait until the relay stored it.
    Send {
        /// The group id (hex).
        id: String,
        /// The text.
        text: String,
    },
    /// Show the group's messages, oldest first.
    History {
        /// The group id (hex).
        id: String,
        /// Most messages to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

fn group_id(hex_id: &str) -> Result<Vec<u8>, CliError> {
    hex::decode(hex_id).map_err(|_| CliError::GroupId(hex_id.to_owned()))
}

fn describe(info: &GroupInfo) -> String {
    let members: Vec<String> = info
        .members
        .iter()
        .map(|m| {
            if m.admin {
                format!("{} (admin)", m.user)
            } else {
                m.user.clone()
            }
        })
        .collect();
    format!(
        "{} \"{}\" version {}: {}",
        hex::encode(&info.id),
        info.name,
        info.version,
        members.join(", ")
    )
}

async fn edit(client: &Client, id: &str, edit: GroupEdit) -> Result<GroupInfo, CliError> {
    Ok(client.change_group(&group_id(id)?, edit).await?)
}

pub(crate) async fn run(client: &Client, command: &GroupCommand) -> Result<(), CliError> {
    // Changes and messages are sent through the connection.
    client.start();
    let result = match command {
        GroupCommand::Create { name, members } => {
            let members: Vec<&str> = members.iter().map(String::as_str).collect();
            let id = client.create_group(name, &members).await?;
            println!("{}", describe(&client.group(&id)?));
            Ok(())
        }
        GroupCommand::List => {
            for info in client.groups()? {
                println!("{}", describe(&info));
            }
            Ok(())
        }
        GroupCommand::Show { id } => {
            let info = client.group(&group_id(id)?)?;
            println!("{}", describe(&info));
            println!(
                "only admins send: {}, only admins edit info: {}",
                info.only_admins_send, info.only_admins_edit_info
            );
            Ok(())
        }
        GroupCommand::Add { id, user, admin } => edit(
            client,
            id,
            GroupEdit::Add {
                user: user.clone(),
                admin: *admin,
            },
        )
        .await
        .map(|info| println!("{}", describe(&info))),
        GroupCommand::Remove { id, user } => edit(client, id, GroupEdit::Remove(user.clone()))
            .await
            .map(|info| println!("{}", describe(&info))),
        GroupCommand::Leave { id } => edit(client, id, GroupEdit::Leave)
            .await
            .map(|info| println!("{}", describe(&info))),
        GroupCommand::Rename { id, name } => edit(client, id, GroupEdit::Rename(name.clone()))
            .await
            .map(|info| println!("{}", describe(&info))),
        GroupCommand::Send { id, text } => {
            let message = client.send_group(&group_id(id)?, text.as_bytes()).await?;
            wait_stored(client, message).await?;
            println!("sent {message:016x}");
            Ok(())
        }
        GroupCommand::History { id, limit } => {
            print_history(
                &client
                    .group_messages(&group_id(id)?, None, *limit)?
                    .messages,
            );
            Ok(())
        }
    };
    // What the change or creation queued goes before we leave: wait for the outbox.
    let drained = tokio::time::timeout(crate::cli::SEND_WAIT, async {
        while client.outbox_len().unwrap_or(0) > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    client.stop().await;
    result?;
    drained.map_err(|_| CliError::NotStored(crate::cli::SEND_WAIT))
}
